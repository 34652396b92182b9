package webhook_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/prost-platform/prost/pkg/webhook"
)

// The example of the Standard Webhooks specification and its reference
// libraries.
func TestStandardWebhooksVector(t *testing.T) {
	t.Parallel()
	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	body := []byte(`{"test": 2432232314}`)
	ts := time.Unix(1614265330, 0)
	sig, err := webhook.Sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", ts, body)
	require.NoError(t, err)
	require.Equal(t, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=", sig)

	h := http.Header{}
	require.NoError(t, webhook.SetHeaders(h, secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", ts, body))
	require.NoError(t, webhook.Verify(secret, h, body, ts.Add(time.Minute), 0))
}

func TestVerify(t *testing.T) {
	t.Parallel()
	secret := webhook.NewSecret()
	require.True(t, strings.HasPrefix(secret, webhook.SecretPrefix))
	now := time.Now()
	body := []byte(`{"id":"e1"}`)
	h := http.Header{}
	require.NoError(t, webhook.SetHeaders(h, secret, "msg-1", now, body))
	require.NoError(t, webhook.Verify(secret, h, body, now, 0))

	require.ErrorIs(t, webhook.Verify(secret, h, []byte(`{"id":"e2"}`), now, 0), webhook.ErrNoMatch)
	require.ErrorIs(t, webhook.Verify(webhook.NewSecret(), h, body, now, 0), webhook.ErrNoMatch)
	require.ErrorIs(t, webhook.Verify(secret, h, body, now.Add(10*time.Minute), 0), webhook.ErrInvalidTimestamp)
	require.ErrorIs(t, webhook.Verify("whsec_!!", h, body, now, 0), webhook.ErrInvalidSecret)

	// Several signatures (a secret rotation): one valid is enough.
	h2 := h.Clone()
	h2.Set(webhook.HeaderSignature, "v1,AAAA v2,zzz "+h.Get(webhook.HeaderSignature))
	require.NoError(t, webhook.Verify(secret, h2, body, now, 0))

	h3 := h.Clone()
	h3.Del(webhook.HeaderID)
	require.ErrorIs(t, webhook.Verify(secret, h3, body, now, 0), webhook.ErrMissingHeaders)
}
