package collab

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"regexp"
	"strings"
)

// logID is what logs show instead of a document's edit id, which is the
// capability to edit: the first 8 hex digits of its SHA-256. An operator
// who has the edit id can find its lines (printf %s id | sha256sum); a
// reader of the logs cannot edit.
func logID(id string) string {
	sum := sha256.Sum256([]byte(strings.ToLower(id)))
	return hex.EncodeToString(sum[:4])
}

// uuidPattern matches ids as collab hands them out (canonical UUIDs).
var uuidPattern = regexp.MustCompile(`[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}`)

// redact replaces every id in s with "id:" and its logID.
func redact(s string) string {
	if !uuidPattern.MatchString(s) {
		return s
	}
	return uuidPattern.ReplaceAllStringFunc(s, func(id string) string { return "id:" + logID(id) })
}

// redactIDs wraps a log handler so that no id reaches it in a message,
// a string attribute or an error: errors from the store name documents by
// their edit id ("load doc <id>: ..."), and so would a path. View ids and
// client ids look the same and are hashed too, which costs nothing.
func redactIDs(h slog.Handler) slog.Handler {
	if _, ok := h.(redactingHandler); ok {
		return h
	}
	return redactingHandler{h}
}

type redactingHandler struct{ next slog.Handler }

func (h redactingHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.next.Enabled(ctx, l)
}

func (h redactingHandler) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, r.Level, redact(r.Message), r.PC)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(redactAttr(a))
		return true
	})
	return h.next.Handle(ctx, out)
}

func (h redactingHandler) WithAttrs(as []slog.Attr) slog.Handler {
	out := make([]slog.Attr, len(as))
	for i, a := range as {
		out[i] = redactAttr(a)
	}
	return redactingHandler{h.next.WithAttrs(out)}
}

func (h redactingHandler) WithGroup(name string) slog.Handler {
	return redactingHandler{h.next.WithGroup(name)}
}

func redactAttr(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		return slog.String(a.Key, redact(v.String()))
	case slog.KindGroup:
		g := v.Group()
		out := make([]any, len(g))
		for i, ga := range g {
			out[i] = redactAttr(ga)
		}
		return slog.Group(a.Key, out...)
	case slog.KindAny:
		switch x := v.Any().(type) {
		case error:
			return slog.String(a.Key, redact(x.Error()))
		case interface{ String() string }:
			return slog.String(a.Key, redact(x.String()))
		}
	}
	return slog.Attr{Key: a.Key, Value: v}
}

// RedactIDs wraps a log handler so that no document id reaches it (see
// logID): cmd puts it under every logger, storage's included, whose
// errors name documents too.
func RedactIDs(h slog.Handler) slog.Handler { return redactIDs(h) }
