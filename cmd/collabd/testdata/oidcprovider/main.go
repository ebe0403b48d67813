// Command oidcprovider is a real OpenID provider for collabd's sign-in
// tests: zitadel/oidc's op package (discovery, authorization code flow
// with PKCE, signed ID tokens, a login form) with its example in-memory
// storage, two users, and a groups claim. It is a module of its own so
// that collabd's go.mod does not pull it in; the test builds it.
//
// It listens on 127.0.0.1 (port 0: a free one), registers one web client
// "collabd" with secret "collabd-secret" and the redirect URIs in
// REDIRECT_URI (comma-separated), and prints "issuer URL" once ready.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/zitadel/oidc/v3/example/server/exampleop"
	"github.com/zitadel/oidc/v3/example/server/storage"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// groups are the users' groups, as a directory would hold them.
var groups = map[string][]string{
	"id1": {"eng", "staff"},
	"id2": {"sales"},
}

// withGroups is the example storage with the user's name and groups put
// into every ID token, as providers do with a groups mapper.
type withGroups struct {
	*storage.Storage
	users storage.UserStore
}

func (s withGroups) SetUserinfoFromRequest(ctx context.Context, info *oidc.UserInfo, req op.IDTokenRequest, scopes []string) error {
	if err := s.Storage.SetUserinfoFromRequest(ctx, info, req, scopes); err != nil {
		return err
	}
	if u := s.users.GetUserByID(req.GetSubject()); u != nil {
		info.PreferredUsername = u.Username
		info.Email, info.EmailVerified = u.Email, oidc.Bool(u.EmailVerified)
		info.AppendClaims("groups", groups[u.ID])
	}
	return nil
}

func main() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	issuer := fmt.Sprintf("http://%s/", ln.Addr())
	storage.RegisterClients(storage.WebClient("collabd", "collabd-secret", strings.Split(os.Getenv("REDIRECT_URI"), ",")...))
	users := storage.NewUserStore(issuer)
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	router := exampleop.SetupServer(issuer, withGroups{storage.NewStorage(users), users}, logger, false)
	srv := &http.Server{Handler: router}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	fmt.Printf("issuer %s\n", issuer)
	if err := srv.Serve(ln); err != http.ErrServerClosed {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
