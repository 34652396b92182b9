package apps_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/prost-platform/prost/pkg/domain/apps"
	"github.com/prost-platform/prost/pkg/prosttest"
)

var testDB *prosttest.Database

// TestMain gives the package one fresh migrated database, shared by every
// test (each works on Apps of its own), and fails the run when a goroutine
// outlives the tests.
func TestMain(m *testing.M) { prosttest.Main(m, &testDB) }

// fakeClock gives s a clock that runs with the real one plus what advance
// added: a test moves s past its CacheTTL without sleeping.
func fakeClock(s *apps.Store) (advance func(time.Duration)) {
	var skew atomic.Int64
	apps.SetClock(s, func() time.Time { return time.Now().Add(time.Duration(skew.Load())) })
	return func(d time.Duration) { skew.Add(int64(d)) }
}

func newApp(t *testing.T, s *apps.Store) (apps.App, apps.Credentials) {
	t.Helper()
	app, cred, err := s.Create(t.Context(), "app "+t.Name())
	require.NoError(t, err)
	return app, cred
}

func TestCreate(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := apps.NewStore(testDB.Pool, apps.Config{})

	app, cred, err := s.Create(ctx, "  Shop  ")
	require.NoError(t, err)
	require.Equal(t, "Shop", app.Name, "the name is trimmed")
	require.Equal(t, apps.StatusActive, app.Status)
	require.Equal(t, app.ID, cred.AppID)
	require.Equal(t, app.APIKey, cred.APIKey)
	require.NotEqual(t, uuid.Nil, app.ID)
	require.WithinDuration(t, time.Now(), app.CreatedAt, time.Minute)

	require.True(t, strings.HasPrefix(cred.APIKey, apps.KeyPrefix), cred.APIKey)
	require.True(t, strings.HasPrefix(cred.APISecret, apps.SecretPrefix), cred.APISecret)
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(cred.APISecret, apps.SecretPrefix))
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(raw), 32, "the secret carries at least 32 random bytes")

	// The secret is stored only as its SHA-256: no column holds it, in any form.
	var rowText string
	var hash []byte
	require.NoError(t, testDB.Pool.QueryRow(ctx, `SELECT row_to_json(a)::text, secret_hash FROM apps a WHERE app_id = $1`, app.ID).Scan(&rowText, &hash))
	want := sha256.Sum256([]byte(cred.APISecret))
	require.Equal(t, want[:], hash)
	for _, form := range []string{cred.APISecret, strings.TrimPrefix(cred.APISecret, apps.SecretPrefix), hex.EncodeToString(raw), base64.StdEncoding.EncodeToString(raw)} {
		require.NotContains(t, rowText, form)
	}
	require.Contains(t, rowText, cred.APIKey)

	got, err := s.Get(ctx, app.ID)
	require.NoError(t, err)
	require.Equal(t, app, got)

	// Credentials are random: a second App shares nothing with the first.
	_, cred2, err := s.Create(ctx, "Shop")
	require.NoError(t, err)
	require.NotEqual(t, cred.AppID, cred2.AppID)
	require.NotEqual(t, cred.APIKey, cred2.APIKey)
	require.NotEqual(t, cred.APISecret, cred2.APISecret)
}

func TestCreateInvalidName(t *testing.T) {
	t.Parallel()
	s := apps.NewStore(testDB.Pool, apps.Config{})
	tests := []struct {
		name    string
		in      string
		wantErr error
	}{
		{"empty", "", apps.ErrInvalidName},
		{"blank", " \t\n ", apps.ErrInvalidName},
		{"201 characters", strings.Repeat("a", 201), apps.ErrInvalidName},
		{"not utf-8", "shop\xff", apps.ErrInvalidName},
		{"200 characters", strings.Repeat("a", 200), nil},
		// Characters, not bytes: 200 two-byte characters are fine.
		{"200 multibyte characters", strings.Repeat("é", 200), nil},
		{"one character", "x", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			app, _, err := s.Create(t.Context(), tt.in)
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, strings.TrimSpace(tt.in), app.Name)
		})
	}
}

func TestAuthenticate(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := apps.NewStore(testDB.Pool, apps.Config{})
	app, cred := newApp(t, s)
	_, otherCred := newApp(t, s)
	disabled, disabledCred := newApp(t, s)
	_, err := s.SetStatus(ctx, disabled.ID, apps.StatusDisabled)
	require.NoError(t, err)

	tests := []struct {
		name        string
		key, secret string
		wantErr     error
		wantApp     uuid.UUID
	}{
		{"right key and secret", cred.APIKey, cred.APISecret, nil, app.ID},
		{"wrong secret", cred.APIKey, cred.APISecret + "x", apps.ErrUnauthenticated, uuid.Nil},
		{"another app's secret", cred.APIKey, otherCred.APISecret, apps.ErrUnauthenticated, uuid.Nil},
		{"unknown key", apps.KeyPrefix + "00000000000000000000000000000000", cred.APISecret, apps.ErrUnauthenticated, uuid.Nil},
		{"empty key", "", cred.APISecret, apps.ErrUnauthenticated, uuid.Nil},
		{"empty secret", cred.APIKey, "", apps.ErrUnauthenticated, uuid.Nil},
		{"both empty", "", "", apps.ErrUnauthenticated, uuid.Nil},
		{"oversized key", strings.Repeat("k", 129), cred.APISecret, apps.ErrUnauthenticated, uuid.Nil},
		{"oversized secret", cred.APIKey, strings.Repeat("s", 257), apps.ErrUnauthenticated, uuid.Nil},
		{"disabled app", disabledCred.APIKey, disabledCred.APISecret, apps.ErrDisabled, uuid.Nil},
		// Without its secret, a disabled App is not told apart from a wrong one.
		{"disabled app, wrong secret", disabledCred.APIKey, "nope", apps.ErrUnauthenticated, uuid.Nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			// Twice: the second answer may come from the cache and must agree.
			for range 2 {
				got, err := s.Authenticate(t.Context(), tt.key, tt.secret)
				if tt.wantErr != nil {
					require.ErrorIs(t, err, tt.wantErr)
					require.Equal(t, apps.App{}, got)
					continue
				}
				require.NoError(t, err)
				require.Equal(t, tt.wantApp, got.ID)
				require.Equal(t, apps.StatusActive, got.Status)
			}
		})
	}
}

func TestRotateSecret(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := apps.NewStore(testDB.Pool, apps.Config{CacheTTL: 5 * time.Second})
	other := apps.NewStore(testDB.Pool, apps.Config{CacheTTL: 200 * time.Millisecond})
	advance := fakeClock(other)
	app, old := newApp(t, s)

	// Both stores have the old credentials cached.
	_, err := s.Authenticate(ctx, old.APIKey, old.APISecret)
	require.NoError(t, err)
	_, err = other.Authenticate(ctx, old.APIKey, old.APISecret)
	require.NoError(t, err)

	fresh, err := s.RotateSecret(ctx, app.ID)
	require.NoError(t, err)
	require.Equal(t, app.ID, fresh.AppID)
	require.Equal(t, old.APIKey, fresh.APIKey, "rotation keeps the key")
	require.NotEqual(t, old.APISecret, fresh.APISecret)
	require.True(t, strings.HasPrefix(fresh.APISecret, apps.SecretPrefix))

	// In the rotating store: at once, despite the cache.
	_, err = s.Authenticate(ctx, old.APIKey, old.APISecret)
	require.ErrorIs(t, err, apps.ErrUnauthenticated)
	got, err := s.Authenticate(ctx, fresh.APIKey, fresh.APISecret)
	require.NoError(t, err)
	require.Equal(t, app.ID, got.ID)
	require.True(t, got.SecretRotatedAt.After(app.SecretRotatedAt))

	// In another process: once its CacheTTL has passed (on its clock, so
	// that neither a slow machine nor a quick one decides).
	advance(200 * time.Millisecond)
	_, err = other.Authenticate(ctx, old.APIKey, old.APISecret)
	require.ErrorIs(t, err, apps.ErrUnauthenticated)
	_, err = other.Authenticate(ctx, fresh.APIKey, fresh.APISecret)
	require.NoError(t, err)

	_, err = s.RotateSecret(ctx, uuid.New())
	require.ErrorIs(t, err, apps.ErrNotFound)
}

func TestSetStatus(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := apps.NewStore(testDB.Pool, apps.Config{CacheTTL: 5 * time.Second})
	other := apps.NewStore(testDB.Pool, apps.Config{CacheTTL: 200 * time.Millisecond})
	advance := fakeClock(other)
	app, cred := newApp(t, s)

	_, err := s.Authenticate(ctx, cred.APIKey, cred.APISecret)
	require.NoError(t, err)
	_, err = other.Authenticate(ctx, cred.APIKey, cred.APISecret)
	require.NoError(t, err)

	got, err := s.SetStatus(ctx, app.ID, apps.StatusDisabled)
	require.NoError(t, err)
	require.Equal(t, apps.StatusDisabled, got.Status)
	require.True(t, got.UpdatedAt.After(app.UpdatedAt))

	// In the store that disabled it: at once, despite the cache.
	_, err = s.Authenticate(ctx, cred.APIKey, cred.APISecret)
	require.ErrorIs(t, err, apps.ErrDisabled)

	// In another process: once its CacheTTL (200ms) has passed on its
	// clock. A store that kept the entry longer (the default 2s, the 5s
	// cap) still answers from its cache here.
	advance(200 * time.Millisecond)
	_, err = other.Authenticate(ctx, cred.APIKey, cred.APISecret)
	require.ErrorIs(t, err, apps.ErrDisabled, "a 200ms CacheTTL applies once 200ms have passed")

	// Enabling works the same way.
	got, err = s.SetStatus(ctx, app.ID, apps.StatusActive)
	require.NoError(t, err)
	require.Equal(t, apps.StatusActive, got.Status)
	_, err = s.Authenticate(ctx, cred.APIKey, cred.APISecret)
	require.NoError(t, err)
	advance(200 * time.Millisecond)
	_, err = other.Authenticate(ctx, cred.APIKey, cred.APISecret)
	require.NoError(t, err)

	_, err = s.SetStatus(ctx, app.ID, "deleted")
	require.Error(t, err)
	fromDB, err := s.Get(ctx, app.ID)
	require.NoError(t, err)
	require.Equal(t, apps.StatusActive, fromDB.Status, "an invalid status changes nothing")

	_, err = s.SetStatus(ctx, uuid.New(), apps.StatusDisabled)
	require.ErrorIs(t, err, apps.ErrNotFound)
	_, err = s.Get(ctx, uuid.New())
	require.ErrorIs(t, err, apps.ErrNotFound)
}

// blockingTracer stalls the next GetAppByKey query, after its row was read,
// until released: it holds an Authenticate between reading the App and
// caching it.
type blockingTracer struct {
	mu      sync.Mutex
	armed   bool
	reached chan struct{}
	release chan struct{}
}

type blockKey struct{}

func (b *blockingTracer) arm() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.armed = true
	b.reached = make(chan struct{})
	b.release = make(chan struct{})
}

func (b *blockingTracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	if !strings.Contains(data.SQL, "WHERE api_key = $1") {
		return ctx
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.armed {
		return ctx
	}
	b.armed = false
	return context.WithValue(ctx, blockKey{}, [2]chan struct{}{b.reached, b.release})
}

func (b *blockingTracer) TraceQueryEnd(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryEndData) {
	if ch, ok := ctx.Value(blockKey{}).([2]chan struct{}); ok {
		close(ch[0])
		<-ch[1]
	}
}

// TestChangeRacingAnAuthentication: a change made through a Store applies at
// once in that Store even when an Authenticate that read the App before the
// change caches its result after it.
func TestChangeRacingAnAuthentication(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		change func(t *testing.T, s *apps.Store, app apps.App)
		// check runs after the change with the pre-change credentials.
		wantErr error
	}{
		{
			name: "disable",
			change: func(t *testing.T, s *apps.Store, app apps.App) {
				_, err := s.SetStatus(t.Context(), app.ID, apps.StatusDisabled)
				require.NoError(t, err)
			},
			wantErr: apps.ErrDisabled,
		},
		{
			name: "rotate",
			change: func(t *testing.T, s *apps.Store, app apps.App) {
				_, err := s.RotateSecret(t.Context(), app.ID)
				require.NoError(t, err)
			},
			wantErr: apps.ErrUnauthenticated,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			tracer := &blockingTracer{}
			pc, err := pgxpool.ParseConfig(testDB.URL)
			require.NoError(t, err)
			pc.ConnConfig.Tracer = tracer
			pc.MaxConns = 4
			pool, err := pgxpool.NewWithConfig(ctx, pc)
			require.NoError(t, err)
			defer pool.Close()
			s := apps.NewStore(pool, apps.Config{CacheTTL: 5 * time.Second})
			app, cred := newApp(t, s)

			tracer.arm()
			reached, release := tracer.reached, tracer.release
			inFlight := make(chan error, 1)
			go func() {
				_, err := s.Authenticate(ctx, cred.APIKey, cred.APISecret)
				inFlight <- err
			}()
			<-reached // the Authenticate has read the App as it was

			tt.change(t, s, app)
			close(release)
			require.NoError(t, <-inFlight, "the authentication that started first may succeed")

			_, err = s.Authenticate(ctx, cred.APIKey, cred.APISecret)
			require.ErrorIs(t, err, tt.wantErr, "the change must apply at once in the Store that made it")
		})
	}
}

func TestList(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := apps.NewStore(testDB.Pool, apps.Config{})
	var mine []uuid.UUID
	for range 7 {
		app, _ := newApp(t, s)
		mine = append(mine, app.ID)
	}

	// Walk every App in pages of 3 (other tests add Apps concurrently).
	const limit = 3
	var all []apps.App
	var after *apps.App
	for pages := 0; ; pages++ {
		require.Less(t, pages, 10_000)
		page, more, err := s.List(ctx, apps.ListParams{Limit: limit, After: after})
		require.NoError(t, err)
		require.LessOrEqual(t, len(page), limit)
		if more {
			require.Len(t, page, limit, "only the last page is short")
		}
		all = append(all, page...)
		if !more {
			break
		}
		after = &page[len(page)-1]
	}

	seen := map[uuid.UUID]bool{}
	for i, a := range all {
		require.False(t, seen[a.ID], "App %s listed twice", a.ID)
		seen[a.ID] = true
		if i > 0 {
			p := all[i-1]
			inOrder := p.CreatedAt.Before(a.CreatedAt) || p.CreatedAt.Equal(a.CreatedAt) && p.ID.String() < a.ID.String()
			require.True(t, inOrder, "Apps are listed in creation order")
		}
	}
	var order []uuid.UUID
	for _, a := range all {
		for _, id := range mine {
			if a.ID == id {
				order = append(order, id)
			}
		}
	}
	require.Equal(t, mine, order, "every App appears once, in creation order")

	// The page after the newest of this test's Apps does not hold older ones.
	last, err := s.Get(ctx, mine[len(mine)-1])
	require.NoError(t, err)
	page, _, err := s.List(ctx, apps.ListParams{After: &last})
	require.NoError(t, err)
	for _, a := range page {
		require.NotContains(t, mine, a.ID)
	}

	// Limit defaults to 100.
	page, _, err = s.List(ctx, apps.ListParams{})
	require.NoError(t, err)
	require.LessOrEqual(t, len(page), 100)

	n, err := s.Count(ctx)
	require.NoError(t, err)
	require.GreaterOrEqual(t, n, int64(len(all)))
}

// TestFeedAppliesChangesEverywhereAtOnce: with an invalidation feed, a
// rotation or a disable made through one process's Store applies at once in
// another's, although its cache would trust the old row for an hour.
func TestFeedAppliesChangesEverywhereAtOnce(t *testing.T) {
	ctx := t.Context()
	feedA, feedB := prosttest.Feed(t, testDB.Pool), prosttest.Feed(t, testDB.Pool)
	a := apps.NewStore(testDB.Pool, apps.Config{Feed: feedA, CacheTTL: time.Hour})
	b := apps.NewStore(testDB.Pool, apps.Config{Feed: feedB, CacheTTL: time.Hour})
	app, creds, err := a.Create(ctx, "fed")
	require.NoError(t, err)
	_, err = b.Authenticate(ctx, creds.APIKey, creds.APISecret) // cached in b for an hour
	require.NoError(t, err)

	rotated, err := a.RotateSecret(ctx, app.ID)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		_, err := b.Authenticate(ctx, creds.APIKey, creds.APISecret)
		return errors.Is(err, apps.ErrUnauthenticated)
	}, 30*time.Second, 10*time.Millisecond, "the old secret stops working in the other process")
	_, err = b.Authenticate(ctx, rotated.APIKey, rotated.APISecret)
	require.NoError(t, err)

	_, err = a.SetStatus(ctx, app.ID, apps.StatusDisabled)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		_, err := b.Authenticate(ctx, rotated.APIKey, rotated.APISecret)
		return errors.Is(err, apps.ErrDisabled)
	}, 30*time.Second, 10*time.Millisecond, "the disable applies in the other process")
}

// TestFeedHearsChangesMadeInSQL: the notice comes from the apps table's
// trigger, in the changing transaction, so a disable an operator makes in
// psql applies at once too, and the App's key is announced once: not for a
// change rolled back, and not a second time by the store.
func TestFeedHearsChangesMadeInSQL(t *testing.T) {
	ctx := t.Context()
	feed := prosttest.Feed(t, testDB.Pool)
	var mu sync.Mutex
	var heard []string // the keys announced on the apps topic, in commit order
	feed.Subscribe("apps", func(key string) { mu.Lock(); heard = append(heard, key); mu.Unlock() })
	a := apps.NewStore(testDB.Pool, apps.Config{CacheTTL: time.Hour})
	b := apps.NewStore(testDB.Pool, apps.Config{Feed: feed, CacheTTL: time.Hour})
	app, creds, err := a.Create(ctx, "sql-disabled")
	require.NoError(t, err)
	_, err = b.Authenticate(ctx, creds.APIKey, creds.APISecret) // cached in b for an hour
	require.NoError(t, err)

	tx, err := testDB.Pool.Begin(ctx)
	require.NoError(t, err)
	_, err = tx.Exec(ctx, `UPDATE apps SET status = 'disabled' WHERE app_id = $1`, app.ID)
	require.NoError(t, err)
	require.NoError(t, tx.Rollback(ctx))
	_, err = b.Authenticate(ctx, creds.APIKey, creds.APISecret)
	require.NoError(t, err, "a rolled-back disable changes nothing")

	_, err = testDB.Pool.Exec(ctx, `UPDATE apps SET status = 'disabled' WHERE app_id = $1`, app.ID)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		_, err := b.Authenticate(ctx, creds.APIKey, creds.APISecret)
		return errors.Is(err, apps.ErrDisabled)
	}, 30*time.Second, 10*time.Millisecond, "a disable made in SQL applies in the process that cached the App")
	// Notices arrive in commit order, so the committed disable's being heard
	// means a notice of the rolled-back one would have been heard before it.
	mu.Lock()
	defer mu.Unlock()
	announced := 0
	for _, k := range heard {
		if k == creds.APIKey {
			announced++
		}
	}
	require.Equal(t, 1, announced, "the App's key is announced once, for the committed change only: %q", heard)
}
