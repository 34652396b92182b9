// Command webhook-receiver receives the deliveries of a PROST HTTP
// subscription: it verifies each one's Standard Webhooks signature with the
// subscription's secret, drops a repeat of a webhook-id it has processed
// already, and prints each event.
//
//	WEBHOOK_SECRET=whsec_... go run . -addr 127.0.0.1:8090
//
// It needs nothing but the standard library: the signature is an
// HMAC-SHA256, with the base64-decoded part of the secret after "whsec_" as
// key, of "<webhook-id>.<webhook-timestamp>.<body>", sent base64-encoded as
// "v1,<signature>" in webhook-signature (several may be sent, separated by
// spaces, while a secret is being rotated).
package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// tolerance is how far a delivery's timestamp may be from this clock:
// older deliveries are refused as replays.
const tolerance = 5 * time.Minute

func main() {
	addr := flag.String("addr", "127.0.0.1:8090", "where to listen (port 0: any free port)")
	flag.Parse()
	secret := os.Getenv("WEBHOOK_SECRET")
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil || len(key) == 0 {
		log.Fatal("WEBHOOK_SECRET must hold the subscription's signing secret (whsec_...)")
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("listening on http://%s/hook\n", ln.Addr())
	r := &receiver{key: key, seen: map[string]bool{}}
	log.Fatal(http.Serve(ln, r))
}

type receiver struct {
	key  []byte
	mu   sync.Mutex
	seen map[string]bool // webhook-ids processed; a real receiver keeps them in its database
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(io.LimitReader(req.Body, 8<<20))
	if err != nil {
		http.Error(w, "cannot read the body", http.StatusBadRequest)
		return
	}
	id := req.Header.Get("webhook-id")
	if err := verify(r.key, id, req.Header.Get("webhook-timestamp"), req.Header.Get("webhook-signature"), body, time.Now()); err != nil {
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	// At least once: a delivery whose answer was lost comes again with the
	// same webhook-id. Process each id once.
	if r.seen[id] {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	var ev struct {
		ID, Source, Type, Partitionkey string
		Data                           json.RawMessage
	}
	if err := json.Unmarshal(body, &ev); err != nil {
		http.Error(w, "not a structured CloudEvent", http.StatusBadRequest)
		return
	}
	fmt.Printf("%s %s %s %s key=%s data=%s\n", id, ev.Type, ev.Source, ev.ID, ev.Partitionkey, ev.Data)
	r.seen[id] = true
	w.WriteHeader(http.StatusNoContent)
}

// verify checks a Standard Webhooks signature in constant time.
func verify(key []byte, id, ts, sigs string, body []byte, now time.Time) error {
	if id == "" || ts == "" || sigs == "" {
		return errors.New("missing webhook-id, webhook-timestamp or webhook-signature")
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return errors.New("bad webhook-timestamp")
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return errors.New("webhook-timestamp too far from now")
	}
	m := hmac.New(sha256.New, key)
	fmt.Fprintf(m, "%s.%s.", id, ts)
	m.Write(body)
	want := m.Sum(nil)
	for _, s := range strings.Fields(sigs) {
		v, b64, ok := strings.Cut(s, ",")
		if !ok || v != "v1" {
			continue
		}
		if got, err := base64.StdEncoding.DecodeString(b64); err == nil && hmac.Equal(got, want) {
			return nil
		}
	}
	return errors.New("no valid signature")
}
