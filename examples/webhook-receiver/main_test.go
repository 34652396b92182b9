package main

import (
	"encoding/base64"
	"strings"
	"testing"
	"time"
)

// The example of the Standard Webhooks specification.
func TestVerify(t *testing.T) {
	key, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_"))
	body := []byte(`{"test": 2432232314}`)
	const id, ts, sig = "msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330", "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
	at := time.Unix(1614265330, 0).Add(time.Minute)
	if err := verify(key, id, ts, "v1,bad v2,x "+sig, body, at); err != nil {
		t.Fatalf("a valid signature is refused: %v", err)
	}
	for name, c := range map[string]struct {
		id, ts, sig string
		body        string
		at          time.Time
	}{
		"other body":   {id, ts, sig, `{"test": 1}`, at},
		"other id":     {"msg_x", ts, sig, string(body), at},
		"too old":      {id, ts, sig, string(body), at.Add(time.Hour)},
		"no signature": {id, ts, "", string(body), at},
	} {
		if err := verify(key, c.id, c.ts, c.sig, []byte(c.body), c.at); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
