package jetstream

import (
	"errors"
	"testing"
	"time"
)

// ttl is short to keep the tests quick (600 ms missed a renewal under the
// race detector on loaded cores); the bounds below are generous
// multiples of it, not speed assertions.
const ttl = 1200 * time.Millisecond

// acquireWithin polls Acquire until it succeeds or limit passes, and
// returns the lease and how long it took.
func acquireWithin(t *testing.T, s *Store, doc string, limit time.Duration) (*Lease, time.Duration) {
	t.Helper()
	start := time.Now()
	for {
		l, err := s.Acquire(testCtx(t), doc)
		if err == nil {
			t.Cleanup(l.Close)
			return l, time.Since(start)
		}
		if !errors.Is(err, ErrHeld) {
			t.Fatalf("Acquire: %v", err)
		}
		if time.Since(start) > limit {
			t.Fatalf("lease not acquired within %v: %v", limit, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestLeaseHeldWhileRenewed(t *testing.T) {
	ns := startNATS(t)
	a := ns.newStore(t, Options{NodeID: "a", LeaseTTL: ttl})
	b := ns.newStore(t, Options{NodeID: "b", LeaseTTL: ttl})
	ctx := testCtx(t)
	doc := createDoc(t, a).ID

	la, err := a.Acquire(ctx, doc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(la.Close)
	// Several TTLs pass; a keeps renewing, so b never gets it.
	for end := time.Now().Add(4 * ttl); time.Now().Before(end); time.Sleep(ttl / 4) {
		if _, err := b.Acquire(ctx, doc); !errors.Is(err, ErrHeld) {
			t.Fatalf("b.Acquire while a renews = %v, want ErrHeld", err)
		}
		if !la.Valid() {
			t.Fatalf("a's lease invalid while renewing: %v", la.Err())
		}
	}
	if owner, err := b.Owner(ctx, doc); err != nil || owner != "a" {
		t.Fatalf("Owner = %q, %v; want a", owner, err)
	}
	select {
	case <-la.Lost():
		t.Fatalf("lease lost: %v", la.Err())
	default:
	}
	// Release hands it over at once.
	if err := la.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Owner(ctx, doc); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Owner after Release = %v, want ErrNotFound", err)
	}
	lb, err := b.Acquire(ctx, doc)
	if err != nil {
		t.Fatalf("b.Acquire after Release: %v", err)
	}
	lb.Close()
}

// TestLeaseExpiryTakeover: an owner that stops renewing (a crash) loses
// the document to another node within the TTL plus a margin for the
// server's expiry timer and polling; never before the TTL has passed since
// its last renewal.
func TestLeaseExpiryTakeover(t *testing.T) {
	ns := startNATS(t)
	a := ns.newStore(t, Options{NodeID: "a", LeaseTTL: ttl})
	b := ns.newStore(t, Options{NodeID: "b", LeaseTTL: ttl})
	doc := createDoc(t, a).ID

	la, err := a.Acquire(testCtx(t), doc)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(ttl) // a few renewals
	la.Close()      // stops renewing; the key stays until it expires
	crashed := time.Now()
	lb, took := acquireWithin(t, b, doc, ttl+2*time.Second)
	t.Logf("takeover %v after the owner stopped renewing (TTL %v)", took, ttl)
	if lb.Doc() != doc || !lb.Valid() {
		t.Fatalf("b's lease: doc %s valid %v", lb.Doc(), lb.Valid())
	}
	// The lease was renewed at most RenewEvery before the crash, so
	// b cannot have taken it less than TTL - RenewEvery after it.
	if min := ttl - a.renew; time.Since(crashed) < min {
		t.Fatalf("taken %v after the crash, before the TTL could expire (%v)", time.Since(crashed), min)
	}
	if err := la.Err(); !errors.Is(err, ErrClosed) {
		t.Errorf("closed lease Err = %v, want ErrClosed", err)
	}
}

// TestLeaseLostWhenCut: an owner cut off from NATS cannot renew; it
// notices on its own (Lost closes) no later than its deadline, and the
// key expires so that another node takes over.
func TestLeaseLostWhenCut(t *testing.T) {
	ns := startNATS(t)
	a := ns.newStore(t, Options{NodeID: "a", LeaseTTL: ttl})
	b := ns.newStore(t, Options{NodeID: "b", LeaseTTL: ttl})
	doc := createDoc(t, a).ID

	la, err := a.Acquire(testCtx(t), doc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(la.Close)
	a.nc.Close()
	// b polls from the moment of the cut. When it gets the key, a must
	// already have stopped trusting its lease: a's deadline counts from
	// before its last renewal reached the server, the key's expiry from
	// after, so the two never overlap (clock rates on one machine agree).
	lb, took := acquireWithin(t, b, doc, ttl+2*time.Second)
	defer lb.Close()
	if la.Valid() {
		t.Fatalf("b acquired %v after the cut while a's lease was still valid", took)
	}
	select {
	case <-la.Lost():
	case <-time.After(time.Second):
		t.Fatal("lease not reported lost after its deadline")
	}
	if err := la.Err(); !errors.Is(err, ErrLeaseLost) {
		t.Fatalf("Err = %v, want ErrLeaseLost", err)
	}
	t.Logf("another node took over %v after the cut (TTL %v)", took, ttl)
	lb.Close()
}

// TestLeaseTakenOver: once another node holds the key, the old holder's
// next renewal fails its CAS and it learns it lost the lease, even if its
// own deadline had not passed (here: the key was deleted under it).
func TestLeaseTakenOver(t *testing.T) {
	ns := startNATS(t)
	a := ns.newStore(t, Options{NodeID: "a", LeaseTTL: 5 * time.Second, RenewEvery: 100 * time.Millisecond})
	b := ns.newStore(t, Options{NodeID: "b", LeaseTTL: 5 * time.Second})
	ctx := testCtx(t)
	doc := createDoc(t, a).ID
	la, err := a.Acquire(ctx, doc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(la.Close)
	// An operator (or a bug) removes the key; b takes it.
	if err := b.owners.Delete(ctx, doc); err != nil {
		t.Fatal(err)
	}
	lb, err := b.Acquire(ctx, doc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(lb.Close)
	select {
	case <-la.Lost():
	case <-time.After(3 * time.Second):
		t.Fatal("old holder did not notice the takeover")
	}
	if err := la.Err(); !errors.Is(err, ErrLeaseLost) {
		t.Fatalf("Err = %v, want ErrLeaseLost", err)
	}
	if owner, err := a.Owner(ctx, doc); err != nil || owner != "b" {
		t.Fatalf("Owner = %q, %v; want b", owner, err)
	}
}

// TestLeaseReacquireOwnKey: a node that closed a lease without releasing
// it takes its own key back at once; another node still finds it held.
func TestLeaseReacquireOwnKey(t *testing.T) {
	ns := startNATS(t)
	a := ns.newStore(t, Options{NodeID: "a", LeaseTTL: 5 * time.Second})
	b := ns.newStore(t, Options{NodeID: "b", LeaseTTL: 5 * time.Second})
	ctx := testCtx(t)
	doc := createDoc(t, a).ID
	first, err := a.Acquire(ctx, doc)
	if err != nil {
		t.Fatal(err)
	}
	first.Close()
	if _, err := b.Acquire(ctx, doc); !errors.Is(err, ErrHeld) {
		t.Fatalf("b.Acquire of a's closed lease = %v, want ErrHeld", err)
	}
	again, err := a.Acquire(ctx, doc)
	if err != nil {
		t.Fatalf("a.Acquire of its own key = %v", err)
	}
	defer again.Close()
	// A second live Lease of the same node takes the key; the first one
	// still renewing would lose its CAS.
	third, err := a.Acquire(ctx, doc)
	if err != nil {
		t.Fatal(err)
	}
	defer third.Close()
	select {
	case <-again.Lost():
	case <-time.After(5 * time.Second):
		t.Fatal("the superseded lease did not notice")
	}
	if !third.Valid() {
		t.Fatalf("newest lease invalid: %v", third.Err())
	}
}
