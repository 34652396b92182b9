// Command nats-subscriber reads a PROST NATS subscription with the
// credentials `prost subscriptions creds ID > app.creds` printed: it fetches
// from the subscription's consumer, prints each event and acknowledges it
// once it is processed.
//
//	go run . -url nats://127.0.0.1:4223 -creds app.creds -subscription 0190...
//
// The credentials allow nothing else: fetching from and acknowledging this
// one consumer, through PROST's API prefix, with replies on the
// subscription's own inbox prefix.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func main() {
	url := flag.String("url", "nats://127.0.0.1:4223", "the NATS URL the credentials name")
	creds := flag.String("creds", "app.creds", "the .creds file of the subscription")
	sub := flag.String("subscription", "", "the subscription id (required)")
	count := flag.Int("count", 0, "stop after this many events (0: run until interrupted)")
	wait := flag.Duration("wait", 30*time.Second, "with -count, give up after this long")
	flag.Parse()
	if *sub == "" {
		log.Fatal("-subscription is required")
	}
	nc, err := nats.Connect(*url, nats.UserCredentials(*creds),
		// The credentials may receive replies only under this prefix.
		nats.CustomInboxPrefix("_INBOX_"+*sub))
	if err != nil {
		log.Fatal(err)
	}
	defer nc.Close()
	// PROST serves the consumer's API to tenants under PROST.JSAPI.
	js, err := jetstream.NewWithAPIPrefix(nc, "PROST.JSAPI")
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	cons, err := js.Consumer(ctx, "PROST_EVENTS", "sub_"+*sub)
	if err != nil {
		log.Fatal(err)
	}
	deadline := time.Now().Add(*wait)
	for n := 0; *count == 0 || n < *count; {
		if *count > 0 && time.Now().After(deadline) {
			log.Fatalf("received %d of %d events", n, *count)
		}
		// A fetch asks for at most 256 messages (the consumer's limit).
		batch, err := cons.Fetch(100, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			log.Fatal(err)
		}
		for m := range batch.Messages() {
			var ev struct{ ID, Source, Type, Partitionkey string }
			_ = json.Unmarshal(m.Data(), &ev)
			// Nats-Msg-Id is the event's stable id: deduplicate on it, a
			// message not acknowledged in time is delivered again.
			fmt.Printf("%s %s %s %s key=%s\n", m.Headers().Get(jetstream.MsgIDHeader), ev.Type, ev.Source, ev.ID, ev.Partitionkey)
			if err := m.DoubleAck(ctx); err != nil {
				log.Fatal(err)
			}
			n++
		}
		if err := batch.Error(); err != nil {
			log.Fatal(err)
		}
	}
}
