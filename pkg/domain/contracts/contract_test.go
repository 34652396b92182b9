package contracts_test

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/prost-platform/prost/pkg/domain/contracts"
)

// base is a contract passing every gate; each case breaks one rule.
func base() *contracts.Contract {
	return &contracts.Contract{
		Type: "order.placed", Owner: "shop", Description: "A customer placed an order.", Level: contracts.LevelStandard,
		Schema: "urn:prost:schema:order.placed:1", Compatibility: "BACKWARD", Consumers: []string{"shop", "billing"},
		Idempotency: &contracts.Idempotency{Key: []string{"source", "id"}},
		Retry:       &contracts.Retry{MaxAttempts: 5, Backoff: []string{"1s", "30s"}},
	}
}

func TestLint(t *testing.T) {
	t.Parallel()
	require.Empty(t, contracts.Lint(base(), contracts.LintOptions{}))

	type finding struct{ gate, field string }
	cases := []struct {
		name   string
		change func(c *contracts.Contract)
		want   []finding
	}{
		{"gate A: crosses services with a light contract", func(c *contracts.Contract) { c.Level = "light" },
			[]finding{{"A", "level"}}},
		{"gate A: consumed only by its owner may stay light", func(c *contracts.Contract) {
			c.Level, c.Consumers = "light", []string{"shop"}
		}, nil},
		{"gate B: ordered without a partition key", func(c *contracts.Contract) { c.Ordered = true },
			[]finding{{"B", "partition_key"}}},
		{"gate B: ordered with a partition key", func(c *contracts.Contract) { c.Ordered, c.PartitionKey = true, "/order_id" }, nil},
		{"gate B: a DLQ without a retry policy", func(c *contracts.Contract) { c.DLQ, c.Retry, c.Level, c.Consumers = true, nil, "light", nil },
			[]finding{{"B", "retry"}}},
		{"gate B: at-least-once without idempotency", func(c *contracts.Contract) { c.Idempotency = nil },
			[]finding{{"B", "idempotency"}}},
		{"gate B: at-most-once needs no idempotency", func(c *contracts.Contract) { c.Idempotency, c.Delivery = nil, "at-most-once" }, nil},
		{"gate C: personal data without purpose and retention", func(c *contracts.Contract) {
			c.Classification, c.DataSubject = contracts.Classification{"/email": {Class: "personal"}}, "/user_id"
		}, []finding{{"C", "purpose"}, {"C", "retention"}}},
		{"gate C: personal data with purpose and retention", func(c *contracts.Contract) {
			c.Classification, c.Purpose, c.Retention = contracts.Classification{"/email": {Class: "personal"}}, "send receipts", "400d"
			c.DataSubject = "/user_id"
		}, nil},
		{"gate C: per-field purpose and retention, one field lacking them", func(c *contracts.Contract) {
			c.Classification = contracts.Classification{
				"/email":   {Class: "personal", Purpose: "send receipts", Retention: "400d"},
				"/health":  {Class: "sensitive", Purpose: "care"},
				"/invoice": {Class: "payment"},
			}
			c.DataSubject = "/user_id"
		}, []finding{{"C", "retention"}}},
		{"gate C: classified data without the data subject", func(c *contracts.Contract) {
			c.Classification = contracts.Classification{"/amount": {Class: "payment"}}
		}, []finding{{"C", "data_subject"}}},
		{"gate C: payment data with a card number and a CVV field", func(c *contracts.Contract) {
			c.Classification = contracts.Classification{"/card/cardNumber": {Class: "payment"}, "/cvv": {Class: "payment"}, "/amount": {Class: "payment"}}
			c.DataSubject = "/customer_id"
		}, []finding{{"C", "classification"}, {"C", "classification"}}},
		{"gate C: a strong contract without classification, retention and audit", func(c *contracts.Contract) { c.Level = "strong" },
			[]finding{{"C", "classification"}, {"C", "retention"}, {"C", "audit"}}},
		{"level: every contract names its schema and compatibility", func(c *contracts.Contract) { c.Schema, c.Compatibility = "", "" },
			[]finding{{"level standard", "schema"}, {"level standard", "compatibility"}}},
		{"level: a standard contract states its retry policy", func(c *contracts.Contract) { c.Retry = nil },
			[]finding{{"level standard", "retry"}}},
		{"contract: required fields", func(c *contracts.Contract) { c.Type, c.Owner, c.Description, c.Level = "", " ", "", "" },
			[]finding{{"contract", "type"}, {"contract", "owner"}, {"contract", "description"}, {"contract", "level"}}},
		{"contract: malformed fields", func(c *contracts.Contract) {
			c.Level, c.Compatibility, c.Delivery, c.PartitionKey = "gold", "SIDEWAYS", "twice", "order_id"
			c.Retention, c.Schema = "a while", "order.json"
			c.Retry = &contracts.Retry{MaxAttempts: 0, Backoff: []string{"soon"}}
			c.Idempotency = &contracts.Idempotency{Key: []string{"Not An Attr"}}
			c.Classification = contracts.Classification{"email": {Class: "secret", Retention: "soon"}}
			c.DataSubject = "user_id"
		}, []finding{{"contract", "level"}, {"contract", "schema"}, {"contract", "compatibility"}, {"contract", "delivery"},
			{"contract", "partition_key"}, {"contract", "idempotency.key"}, {"contract", "retry.max_attempts"}, {"contract", "retry.backoff"},
			{"contract", "classification"}, {"contract", "classification"}, {"contract", "classification"}, {"contract", "retention"},
			{"contract", "data_subject"}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ct := base()
			c.change(ct)
			var got []finding
			for _, f := range contracts.Lint(ct, contracts.LintOptions{}) {
				got = append(got, finding{f.Gate, f.Field})
				require.NotEmpty(t, f.Message)
				if strings.Contains(c.name, "gate ") {
					require.True(t, strings.HasPrefix(f.String(), "gate "+f.Gate+": "+f.Field+": "), f.String())
				}
			}
			require.Equal(t, c.want, got)
		})
	}
}

// TestLintSchemaCardFields: gate C looks into the schema a payment contract
// names for fields that can hold a card number or CVV.
func TestLintSchemaCardFields(t *testing.T) {
	t.Parallel()
	c := base()
	c.Classification, c.DataSubject = contracts.Classification{"/amount": {Class: "payment"}}, "/customer_id"
	schema := map[string]any{"type": "object", "properties": map[string]any{
		"amount": map[string]any{"type": "number"},
		"card":   map[string]any{"type": "object", "properties": map[string]any{"pan": map[string]any{"type": "string"}, "cvc": map[string]any{}}},
	}}
	fs := contracts.Lint(c, contracts.LintOptions{Schema: func(string) (any, error) { return schema, nil }})
	require.Len(t, fs, 2)
	require.Equal(t, "C", fs[0].Gate)
	require.Contains(t, fs[0].Message, "#/properties/card/properties/cvc")
	require.Contains(t, fs[1].Message, "#/properties/card/properties/pan")
}

func TestParse(t *testing.T) {
	t.Parallel()
	c, err := contracts.ParseYAML([]byte("type: a.b\nowner: x\nretry:\n  max_attempts: 2\n"))
	require.NoError(t, err)
	require.Equal(t, 2, c.Retry.MaxAttempts)
	for _, bad := range []string{"", "type: a\ncolour: red\n", "type: [a\n", "type: a\n---\ntype: b\n", "retry: 5\n"} {
		_, err := contracts.ParseYAML([]byte(bad))
		require.ErrorIs(t, err, contracts.ErrSyntax, bad)
	}
	c, err = contracts.ParseJSON([]byte(`{"type":"a.b","dlq":true}`))
	require.NoError(t, err)
	require.True(t, c.DLQ)
	for _, bad := range []string{``, `{"type":1}`, `{"typ":"a"}`, `{} {}`, `[]`} {
		_, err := contracts.ParseJSON([]byte(bad))
		require.ErrorIs(t, err, contracts.ErrSyntax, bad)
	}
	// YAML and JSON read the same document.
	y, err := contracts.ParseYAML([]byte("type: t\ndata_subject: /user_id\nclassification:\n  /email: personal\n" +
		"  /phone: {class: personal, purpose: support, retention: 30d}\nidempotency:\n  key: [source, id]\n"))
	require.NoError(t, err)
	require.Equal(t, contracts.Classification{"/email": {Class: "personal"}, "/phone": {Class: "personal", Purpose: "support", Retention: "30d"}}, y.Classification)
	b, _ := json.Marshal(y)
	require.Contains(t, string(b), `"classification":{"/email":"personal","/phone":{"class":"personal","purpose":"support","retention":"30d"}}`)
	j, err := contracts.ParseJSON(b)
	require.NoError(t, err)
	require.Equal(t, y, j)
	// A classification object refuses unknown members in both forms.
	_, err = contracts.ParseYAML([]byte("type: t\nclassification:\n  /email: {class: personal, purpse: x}\n"))
	require.ErrorIs(t, err, contracts.ErrSyntax)
	_, err = contracts.ParseJSON([]byte(`{"type":"t","classification":{"/email":{"class":"personal","purpse":"x"}}}`))
	require.ErrorIs(t, err, contracts.ErrSyntax)
}

// TestLintPaths: the platform's own contracts pass, and each gate fixture
// fails naming its gate.
func TestLintPaths(t *testing.T) {
	t.Parallel()
	reps, err := contracts.LintPaths([]string{"../../../contracts"}, "")
	require.NoError(t, err)
	require.NotEmpty(t, reps)
	types := map[string]bool{}
	for _, r := range reps {
		require.Empty(t, r.Findings, "%s: %v", r.Path, r.Findings)
		types[r.Type] = true
	}
	require.True(t, types["prost.rule.decision"])
	require.True(t, types["prost.dlq.replayed"])

	for file, gate := range map[string]string{"gate-a.yaml": "A", "gate-b.yaml": "B", "gate-c.yaml": "C", "gate-c-payment.yaml": "C"} {
		reps, err := contracts.LintPaths([]string{filepath.Join("testdata", file)}, "")
		require.NoError(t, err)
		require.Len(t, reps, 1)
		require.NotEmpty(t, reps[0].Findings, file)
		for _, f := range reps[0].Findings {
			require.Equal(t, gate, f.Gate, "%s: %s", file, f)
		}
	}
	reps, err = contracts.LintPaths([]string{"testdata/valid.yaml"}, "")
	require.NoError(t, err)
	require.Empty(t, reps[0].Findings)

	// With a schemas directory, a named schema must exist in it.
	reps, err = contracts.LintPaths([]string{"testdata/valid.yaml"}, "../../../schemas")
	require.NoError(t, err)
	require.Len(t, reps[0].Findings, 1)
	require.Equal(t, "schema", reps[0].Findings[0].Field)

	_, err = contracts.LintPaths([]string{"testdata/missing.yaml"}, "")
	require.Error(t, err)
}

func TestFindCardNumber(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		data string
		ptr  string
		ok   bool
	}{
		{`{"card":"4111111111111111"}`, "/card", true},
		{`{"note":"paid with 4111 1111 1111 1111 today"}`, "/note", true},
		{`{"a":[1,{"b":"5500-0000-0000-0004"}]}`, "/a/1/b", true},
		{`{"amex":"378282246310005"}`, "/amex", true},
		{`{"n":4111111111111111}`, "/n", true},
		{`{"x/y":"4012888888881881"}`, "/x~1y", true},
		{`{"card":"4111111111111112"}`, "", false},   // fails Luhn
		{`{"id":"411111111111"}`, "", false},         // 12 digits
		{`{"id":"41111111111111111111"}`, "", false}, // 20 digits
		{`{"phone":"+55 11 91234-5678"}`, "", false},
		{`{"total":12.5,"ok":true,"none":null}`, "", false},
		{`{"s":"4111  1111 1111 1111"}`, "", false}, // a double space splits the run
	} {
		var v any
		dec := json.NewDecoder(strings.NewReader(c.data))
		dec.UseNumber()
		require.NoError(t, dec.Decode(&v))
		p, ok := contracts.FindCardNumber(v)
		require.Equal(t, c.ok, ok, c.data)
		require.Equal(t, c.ptr, p, c.data)
	}
}

// TestGateCNamesThePath: each personal or sensitive field lacking a purpose
// or a retention is its own finding, naming the field's pointer.
func TestGateCNamesThePath(t *testing.T) {
	t.Parallel()
	c := base()
	c.DataSubject = "/user_id"
	c.Purpose = "send receipts"
	c.Classification = contracts.Classification{
		"/email":         {Class: "personal", Retention: "400d"},
		"/contact/phone": {Class: "personal"},
		"/diagnosis":     {Class: "sensitive", Purpose: "care", Retention: "10y"},
	}
	var msgs []string
	for _, f := range contracts.Lint(c, contracts.LintOptions{}) {
		msgs = append(msgs, f.String())
	}
	require.Equal(t, []string{"gate C: retention: /contact/phone: personal data needs a retention period (the contract's retention, or the field's own)"}, msgs)

	// The policy ingest applies: each field with its own or the contract's
	// purpose and retention; retention forever when neither states one.
	c.Classification["/contact/phone"] = contracts.Classified{Class: "personal", Retention: "30d"}
	c.Classification["/amount"] = contracts.Classified{Class: "payment"}
	require.Empty(t, contracts.Lint(c, contracts.LintOptions{}))
	p, err := c.Policy()
	require.NoError(t, err)
	require.Equal(t, "/user_id", p.Subject)
	got := map[string]string{}
	for _, f := range p.Fields {
		got[f.Pointer] = f.Class + " " + f.Purpose + " " + f.Retention.String()
	}
	require.Equal(t, map[string]string{
		"/amount": "payment send receipts forever", "/contact/phone": "personal send receipts 30d",
		"/diagnosis": "sensitive care 10y", "/email": "personal send receipts 400d",
	}, got)

	// data_subject: cause (events PROST emits from others) lints, and gives
	// ingest nothing to encrypt.
	c.DataSubject = contracts.SubjectCause
	require.Empty(t, contracts.Lint(c, contracts.LintOptions{}))
	p, err = c.Policy()
	require.NoError(t, err)
	require.Nil(t, p)
}
