package contracts

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/prost-platform/prost/pkg/cursor"
	"github.com/prost-platform/prost/pkg/dataprotect"
	"github.com/prost-platform/prost/pkg/domain/contracts/internal/contractsdb"
	"github.com/prost-platform/prost/pkg/internal/lru"
	"github.com/prost-platform/prost/pkg/invalidate"
	"github.com/prost-platform/prost/pkg/problem"
	"github.com/prost-platform/prost/pkg/storable"
)

var (
	// ErrNotFound: the tenant has no contract for that type.
	ErrNotFound = problem.Errorf(problem.NotFound, "no contract for that type")
)

// LintError is a contract refused because lint found problems.
type LintError struct {
	Findings []Finding
}

func (e *LintError) Error() string {
	parts := make([]string, len(e.Findings))
	for i, f := range e.Findings {
		parts[i] = f.String()
	}
	return "contracts: the contract fails lint: " + strings.Join(parts, "; ")
}

// Unwrap gives the error's kind, problem.Invalid (422).
func (e *LintError) Unwrap() error { return problem.Invalid }

// DetailProblem lists each finding with its gate as the keyword.
func (e *LintError) DetailProblem(p *problem.Problem) {
	p.Detail = "the contract fails lint: fix each finding (gate A, B, C or level) and PUT it again"
	for _, f := range e.Findings {
		p.Errors = append(p.Errors, problem.FieldError{Field: f.Field, Keyword: f.Gate, Detail: f.String()})
	}
}

// Stored is a tenant's contract with its timestamps.
type Stored struct {
	Contract
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Page is one page of a tenant's contracts, by type.
type Page struct {
	Items      []Stored `json:"items"`
	NextCursor *string  `json:"next_cursor"`
}

// Rules is what ingest takes from a contract.
type Rules struct {
	// PartitionKey is a JSON pointer into data naming the partition key, or
	// "".
	PartitionKey string
	// Payment is set when the contract classifies a field as payment: data
	// holding a card-number-like value is refused.
	Payment bool
	// Privacy names the data subject and the classified values ingest
	// encrypts; nil when the contract classifies nothing.
	Privacy *dataprotect.Policy
	// EmittedOnly is set when the contract's data_subject is cause: only
	// PROST emits events of the type, so ingest refuses them.
	EmittedOnly bool
}

// StoreConfig tunes a Store. Zero values take the defaults given.
type StoreConfig struct {
	// Feed, when set, carries contract changes between processes at once.
	Feed *invalidate.Feed
	// TTL is how long ingest trusts a contract it read: changes through
	// this process (and, with a Feed, through any) apply at once; without a
	// Feed, through another within TTL. Defaults to DefaultTTL, or
	// invalidate.DefaultTTL with a Feed.
	TTL time.Duration
}

// DefaultTTL is StoreConfig.TTL's default without a Feed.
const DefaultTTL = 2 * time.Second

// invalidateTopic names contract changes on an invalidate.Feed; the key is
// "<tenant>/<type>".
const invalidateTopic = "contracts"

// Store keeps tenants' contracts in Postgres. It is safe for concurrent use.
type Store struct {
	pool  *pgxpool.Pool
	q     *contractsdb.Queries
	rules *lru.Cache[ruleKey, Rules]
}

type ruleKey struct {
	tenant uuid.UUID
	typ    string
}

// NewStore returns a store on pool.
func NewStore(pool *pgxpool.Pool, cfg StoreConfig) *Store {
	if cfg.TTL <= 0 {
		cfg.TTL = DefaultTTL
		if cfg.Feed != nil {
			cfg.TTL = invalidate.DefaultTTL
		}
	}
	s := &Store{pool: pool, q: contractsdb.New(pool), rules: lru.New[ruleKey, Rules](100_000, cfg.TTL)}
	cfg.Feed.Subscribe(invalidateTopic, func(key string) {
		tenant, typ, ok := strings.Cut(key, "/")
		id, err := uuid.Parse(tenant)
		if key == "" || !ok || err != nil {
			s.rules.RemoveIf(func(ruleKey) bool { return true })
			return
		}
		s.rules.Remove(ruleKey{id, typ})
	})
	return s
}

// Put lints c and stores it as the tenant's contract for c.Type, replacing
// any earlier one. It returns a *LintError when lint finds problems, and
// whether the contract is new.
func (s *Store) Put(ctx context.Context, tenant uuid.UUID, c *Contract) (Stored, bool, error) {
	doc, err := json.Marshal(c)
	if err != nil {
		return Stored{}, false, err
	}
	if ptr, reason, ok := storable.JSON(doc); !ok {
		return Stored{}, false, problem.InvalidField(ptr, reason)
	}
	if fs := Lint(c, LintOptions{}); len(fs) > 0 {
		return Stored{}, false, &LintError{Findings: fs}
	}
	row, err := s.q.PutContract(ctx, contractsdb.PutContractParams{TenantID: tenant, Type: c.Type, Level: c.Level, Document: doc})
	if err != nil {
		return Stored{}, false, err
	}
	// Here at once; the other processes hear of it from the row's trigger
	// (migration 027), which notifies from the statement's transaction.
	s.rules.Remove(ruleKey{tenant, c.Type})
	return Stored{Contract: *c, CreatedAt: row.CreatedAt, UpdatedAt: row.UpdatedAt}, row.CreatedAt.Equal(row.UpdatedAt), nil
}

// Get returns the tenant's contract for typ, or ErrNotFound.
func (s *Store) Get(ctx context.Context, tenant uuid.UUID, typ string) (Stored, error) {
	row, err := s.q.GetContract(ctx, contractsdb.GetContractParams{TenantID: tenant, Type: typ})
	if errors.Is(err, pgx.ErrNoRows) {
		return Stored{}, ErrNotFound
	}
	if err != nil {
		return Stored{}, err
	}
	out := Stored{CreatedAt: row.CreatedAt, UpdatedAt: row.UpdatedAt}
	if err := json.Unmarshal(row.Document, &out.Contract); err != nil {
		return Stored{}, fmt.Errorf("contracts: stored contract %q: %w", typ, err)
	}
	return out, nil
}

// List returns a page of the tenant's contracts by type: limit 1 to 1,000
// (0 means 100), cursor "" or a previous page's NextCursor.
func (s *Store) List(ctx context.Context, tenant uuid.UUID, next string, limit int) (Page, error) {
	if limit <= 0 {
		limit = 100
	}
	after, err := cursor.ParseString("c", next)
	if err != nil {
		return Page{}, err
	}
	rows, err := s.q.ListContracts(ctx, contractsdb.ListContractsParams{TenantID: tenant, AfterType: after, MaxRows: int32(limit + 1)})
	if err != nil {
		return Page{}, err
	}
	out := Page{Items: []Stored{}}
	for i, row := range rows {
		if i == limit {
			c := cursor.String("c", rows[i-1].Type)
			out.NextCursor = &c
			break
		}
		st := Stored{CreatedAt: row.CreatedAt, UpdatedAt: row.UpdatedAt}
		if err := json.Unmarshal(row.Document, &st.Contract); err != nil {
			return Page{}, fmt.Errorf("contracts: stored contract %q: %w", row.Type, err)
		}
		out.Items = append(out.Items, st)
	}
	return out, nil
}

// Rules returns what ingest takes from the tenant's contract for typ (the
// zero Rules when there is none), from a cache trusted for the store's TTL.
func (s *Store) Rules(ctx context.Context, tenant uuid.UUID, typ string) (Rules, error) {
	key := ruleKey{tenant, typ}
	if r, ok := s.rules.Get(key); ok {
		return r, nil
	}
	var r Rules
	gen := s.rules.Gen()
	st, err := s.Get(ctx, tenant, typ)
	switch {
	case errors.Is(err, ErrNotFound):
	case err != nil:
		return Rules{}, err
	default:
		r = Rules{PartitionKey: st.PartitionKey, Payment: st.HasPayment(), EmittedOnly: st.DataSubject == SubjectCause}
		if r.Privacy, err = st.Policy(); err != nil {
			return Rules{}, fmt.Errorf("contracts: stored contract %q: %w", typ, err)
		}
	}
	s.rules.PutIfGen(key, r, gen)
	return r, nil
}
