package main

// Sign-in and per-document access (docs/teams.md): the flags, and the
// access store that keeps records and sessions in the data file, or in
// cluster mode in JetStream key-value buckets, as collab.AccessStore.

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/collabd/collabd/collab"
	"github.com/collabd/collabd/storage"
	"github.com/collabd/collabd/storage/jetstream"
)

// signInConfig holds the sign-in flags.
type signInConfig struct {
	header       string
	groupsHeader string
	defaultLink  string
	sessionTTL   time.Duration
	maxMembers   int

	oidcIssuer      string
	oidcClientID    string
	oidcSecretFile  string
	oidcRedirectURL string
	oidcGroupsClaim string
	oidcScopes      string
	oidcUserClaim   string
	oidcDomains     string
}

func (c *signInConfig) addFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.header, "auth-header", "", "request `header` in which a reverse proxy of -trusted-proxies names the signed-in user (e.g. X-Forwarded-User, Remote-User); turns sign-in and per-document access on")
	fs.StringVar(&c.groupsHeader, "auth-groups-header", "", "request `header` in which the trusted proxy lists the user's groups, comma-separated (e.g. X-Forwarded-Groups, Remote-Groups)")
	fs.StringVar(&c.defaultLink, "default-link", "none", "with sign-in on, what the links of a new document allow: none (private), view or edit")
	fs.DurationVar(&c.sessionTTL, "session-ttl", 12*time.Hour, "how long a sign-in session lasts")
	fs.IntVar(&c.maxMembers, "max-members", 256, "members (users and groups) one document's access may list")
	fs.StringVar(&c.oidcIssuer, "oidc-issuer", "", "OpenID Connect issuer `URL` to sign users in with; turns sign-in and per-document access on")
	fs.StringVar(&c.oidcClientID, "oidc-client-id", "", "OpenID Connect client id")
	fs.StringVar(&c.oidcSecretFile, "oidc-client-secret-file", "", "`file` holding the OpenID Connect client secret (none: a public client, PKCE alone)")
	fs.StringVar(&c.oidcRedirectURL, "oidc-redirect-url", "", "this server's sign-in callback as the provider knows it: https://HOST/api/signin/callback")
	fs.StringVar(&c.oidcGroupsClaim, "oidc-groups-claim", "groups", "ID token claim that lists the user's groups")
	fs.StringVar(&c.oidcUserClaim, "oidc-user-claim", "", "ID token claim that names the user (default: preferred_username, else email, else sub)")
	fs.StringVar(&c.oidcDomains, "oidc-allowed-domains", "", "comma-separated email `domains`: only users whose ID token has a verified email in one of them may sign in (for providers anyone has an account at, such as Google)")
	fs.StringVar(&c.oidcScopes, "oidc-scopes", "openid,profile,email", "comma-separated scopes to ask the provider for (add groups for providers that want it)")
}

func (c *signInConfig) enabled() bool { return c.header != "" || c.oidcIssuer != "" }

// check validates the flags, before anything is opened.
func (c *signInConfig) check(o *collab.Options) error {
	if !c.enabled() {
		return nil
	}
	if c.header != "" && len(o.TrustedProxies) == 0 {
		return errors.New("-auth-header needs -trusted-proxies: the header is believed only from them")
	}
	switch c.defaultLink {
	case collab.LinkNone, collab.LinkView, collab.LinkEdit:
	default:
		return fmt.Errorf("-default-link %q: want none, view or edit", c.defaultLink)
	}
	if c.sessionTTL < time.Minute {
		return fmt.Errorf("-session-ttl %v: at least a minute", c.sessionTTL)
	}
	if c.maxMembers < 1 || c.maxMembers > 10_000 {
		return fmt.Errorf("-max-members %d: 1 to 10000", c.maxMembers)
	}
	if c.oidcIssuer != "" && (c.oidcClientID == "" || c.oidcRedirectURL == "") {
		return errors.New("-oidc-issuer needs -oidc-client-id and -oidc-redirect-url")
	}
	return nil
}

// kvBackend is where an accessStore keeps its records.
type kvBackend interface {
	get(ctx context.Context, bucket, key string) ([]byte, error)
	put(ctx context.Context, bucket, key string, v []byte) error
	del(ctx context.Context, bucket, key string) error
}

// boltKV keeps records in the data file.
type boltKV struct{ db *storage.DB }

func (b boltKV) get(ctx context.Context, bucket, key string) ([]byte, error) {
	v, err := b.db.KVGet(ctx, bucket, key)
	return v, mapErr(err)
}
func (b boltKV) put(ctx context.Context, bucket, key string, v []byte) error {
	return b.db.KVPut(ctx, bucket, key, v)
}
func (b boltKV) del(ctx context.Context, bucket, key string) error {
	return b.db.KVDelete(ctx, bucket, key)
}

// jsKV keeps records in JetStream key-value buckets.
type jsKV struct{ access, sessions, docinfo *jetstream.KV }

func (j jsKV) bucket(name string) *jetstream.KV {
	switch name {
	case storage.KVSessions:
		return j.sessions
	case storage.KVDocInfo:
		return j.docinfo
	}
	return j.access
}
func (j jsKV) get(ctx context.Context, bucket, key string) ([]byte, error) {
	v, err := j.bucket(bucket).Get(ctx, key)
	return v, mapJSErr(err)
}
func (j jsKV) put(ctx context.Context, bucket, key string, v []byte) error {
	return mapJSErr(j.bucket(bucket).Put(ctx, key, v))
}
func (j jsKV) del(ctx context.Context, bucket, key string) error {
	return mapJSErr(j.bucket(bucket).Delete(ctx, key))
}

// accessStore adapts a kvBackend to collab.AccessStore: records are JSON.
type accessStore struct{ kv kvBackend }

var _ collab.AccessStore = accessStore{}

func (s accessStore) Access(ctx context.Context, doc string) (collab.Access, error) {
	var a collab.Access
	return a, s.load(ctx, storage.KVAccess, doc, &a)
}
func (s accessStore) SetAccess(ctx context.Context, doc string, a collab.Access) error {
	return s.store(ctx, storage.KVAccess, doc, a)
}
func (s accessStore) DeleteAccess(ctx context.Context, doc string) error {
	return s.kv.del(ctx, storage.KVAccess, doc)
}
func (s accessStore) Session(ctx context.Context, key string) (collab.Session, error) {
	var v collab.Session
	return v, s.load(ctx, storage.KVSessions, key, &v)
}
func (s accessStore) SetSession(ctx context.Context, key string, v collab.Session) error {
	return s.store(ctx, storage.KVSessions, key, v)
}
func (s accessStore) DeleteSession(ctx context.Context, key string) error {
	return s.kv.del(ctx, storage.KVSessions, key)
}

func (s accessStore) load(ctx context.Context, bucket, key string, v any) error {
	b, err := s.kv.get(ctx, bucket, key)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s record %q: %w", bucket, key, err)
	}
	return nil
}

func (s accessStore) store(ctx context.Context, bucket, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return s.kv.put(ctx, bucket, key, b)
}

// signIn is what setup started: the session sweeper, or in cluster mode
// the watch of access changes. close stops it and waits.
type signIn struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func (s *signIn) close() {
	if s == nil {
		return
	}
	s.cancel()
	s.wg.Wait()
}

// setup puts SignInOptions in o. js is the cluster's store (nil on one
// node). changed, once the collab.Server exists, is told of access
// records other nodes write.
func (c *signInConfig) setup(ctx context.Context, o *collab.Options, db *storage.DB, js *jetstream.Store, replicas int, log *slog.Logger) (*signIn, func(changed func(ctx context.Context, doc string), ended func(key string)) error, error) {
	if !c.enabled() {
		return nil, func(func(context.Context, string), func(string)) error { return nil }, nil
	}
	si := &signIn{}
	var bg context.Context
	bg, si.cancel = context.WithCancel(context.Background())
	var kv kvBackend = boltKV{db}
	var accessKV, sessionsKV *jetstream.KV
	if js != nil {
		var err error
		if accessKV, err = js.OpenKV(ctx, jetstream.KVAccess, replicas, 0); err != nil {
			si.cancel()
			return nil, nil, err
		}
		// A session record lives as long as a session at most.
		sessions, err := js.OpenKV(ctx, jetstream.KVSessions, replicas, c.sessionTTL)
		if err != nil {
			si.cancel()
			return nil, nil, err
		}
		kv = jsKV{access: accessKV, sessions: sessions}
		sessionsKV = sessions
	} else {
		// Expired sessions are dropped when presented; the sweep drops the
		// ones never presented again.
		si.wg.Add(1)
		go func() {
			defer si.wg.Done()
			sweepSessions(bg, db, log)
		}()
	}
	so := &collab.SignInOptions{
		Store:        accessStore{kv},
		Header:       c.header,
		GroupsHeader: c.groupsHeader,
		DefaultLink:  c.defaultLink,
		SessionTTL:   c.sessionTTL,
		MaxMembers:   c.maxMembers,
	}
	if c.oidcIssuer != "" {
		secret := ""
		if c.oidcSecretFile != "" {
			b, err := os.ReadFile(c.oidcSecretFile)
			if err != nil {
				si.cancel()
				return nil, nil, fmt.Errorf("-oidc-client-secret-file: %w", err)
			}
			secret = strings.TrimSpace(string(b))
		}
		oidc, err := collab.NewOIDC(ctx, collab.OIDCOptions{
			Issuer: c.oidcIssuer, ClientID: c.oidcClientID, ClientSecret: secret,
			RedirectURL: c.oidcRedirectURL, GroupsClaim: c.oidcGroupsClaim, UserClaim: c.oidcUserClaim, AllowedDomains: splitList(c.oidcDomains), Scopes: splitList(c.oidcScopes),
		})
		if err != nil {
			si.cancel()
			return nil, nil, fmt.Errorf("-oidc-issuer: %w", err)
		}
		so.OIDC = oidc
	}
	o.SignIn = so
	// In cluster mode a change on any node reaches every node: an access
	// record written re-checks what is open on the document, a session
	// deleted (signed out) ends what it holds open.
	watch := func(changed func(context.Context, string), ended func(string)) error {
		if accessKV == nil {
			return nil
		}
		done, err := accessKV.Watch(bg, func(doc string) { changed(bg, doc) })
		if err != nil {
			return err
		}
		gone, err := sessionsKV.WatchDeleted(bg, ended)
		if err != nil {
			si.cancel()
			<-done
			return err
		}
		si.wg.Add(1)
		go func() {
			defer si.wg.Done()
			<-done
			<-gone
		}()
		return nil
	}
	return si, watch, nil
}

// sweepSessions drops expired sessions from the data file at start-up
// and then every hour, until ctx ends.
func sweepSessions(ctx context.Context, db *storage.DB, log *slog.Logger) {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		now := time.Now()
		n, err := db.KVDeleteIf(ctx, storage.KVSessions, func(_, v []byte) bool {
			var s collab.Session
			return json.Unmarshal(v, &s) != nil || !now.Before(s.Expires)
		})
		switch {
		case err != nil && ctx.Err() == nil:
			log.Warn("sweeping expired sessions", "err", err)
		case n > 0:
			log.Info("expired sessions dropped", "count", n)
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			return
		}
	}
}
