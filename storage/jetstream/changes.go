package jetstream

// Changes: which documents changed, cluster-wide, in stream order, for
// a node's own search index (collabd keeps one per node, fed from the
// stream: docs/workspace.md). A feed is one stream read in order from a
// position the caller recorded: the op stream (every commit group, on
// whichever node it was made) or a key-value bucket's stream (access
// records, workspace records). The caller keeps the sequence of the last
// change it has dealt with and starts from there after a restart, so
// nothing committed while it was down is missed.
//
// A feed is one ordered consumer with headers only: the server pushes
// each message's subject and headers (the revision range, for ops), not
// the ops themselves; nats.go recreates the consumer from the last
// sequence it delivered if it misses a heartbeat, so a feed survives a
// NATS restart and delivers each message once, in order.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	natsjs "github.com/nats-io/nats.go/jetstream"
)

// Feeds that Changes reads.
const (
	// FeedOps is the op stream: one change per commit group.
	FeedOps = "ops"
	// FeedAccess is the bucket of access records (KVAccess).
	FeedAccess = KVAccess
	// FeedDocInfo is the bucket of workspace records (KVDocInfo).
	FeedDocInfo = KVDocInfo
)

// Change is one message of a feed.
type Change struct {
	// Doc is the document's edit id.
	Doc string
	// Rev is, on FeedOps, the last revision the message holds; 0 on the
	// buckets' feeds.
	Rev int64
	// Seq is the message's stream sequence: the feed's position once
	// this change is dealt with.
	Seq uint64
}

// feedStream returns the stream and subject filter of feed.
func feedStream(feed string) (stream, filter, prefix string, err error) {
	switch feed {
	case FeedOps:
		return streamOps, subjectOps + "*", subjectOps, nil
	case FeedAccess, FeedDocInfo:
		b := "collab_" + feed
		return "KV_" + b, "$KV." + b + ".>", "$KV." + b + ".", nil
	}
	return "", "", "", fmt.Errorf("jetstream: feed %q: %w", feed, ErrInvalid)
}

// FeedEnd returns the sequence of feed's last message, 0 when it has
// none. A bucket's feed needs the bucket (OpenKV) first.
func (s *Store) FeedEnd(ctx context.Context, feed string) (uint64, error) {
	name, _, _, err := feedStream(feed)
	if err != nil {
		return 0, err
	}
	st, err := s.js.Stream(ctx, name)
	if err != nil {
		return 0, fmt.Errorf("jetstream: feed %s: %w", feed, err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("jetstream: feed %s: %w", feed, err)
	}
	return info.State.LastSeq, nil
}

// Changes calls fn with every change of feed after sequence after, in
// order, then with every new one as it is stored, until ctx ends. fn
// runs on one goroutine, which Changes' caller owns through ctx: done is
// closed once it has stopped. fn must not block for long: the server
// holds what it has not yet delivered.
func (s *Store) Changes(ctx context.Context, feed string, after uint64, fn func(Change)) (done <-chan struct{}, err error) {
	name, filter, prefix, err := feedStream(feed)
	if err != nil {
		return nil, err
	}
	open := func(after uint64) (natsjs.MessagesContext, error) {
		cfg := natsjs.OrderedConsumerConfig{FilterSubjects: []string{filter}, HeadersOnly: true,
			DeliverPolicy: natsjs.DeliverByStartSequencePolicy, OptStartSeq: after + 1}
		c, err := s.js.OrderedConsumer(ctx, name, cfg)
		if err != nil {
			return nil, fmt.Errorf("jetstream: feed %s: %w", feed, err)
		}
		it, err := c.Messages()
		if err != nil {
			return nil, fmt.Errorf("jetstream: feed %s: %w", feed, err)
		}
		return it, nil
	}
	it, err := open(after)
	if err != nil {
		return nil, err
	}
	d := make(chan struct{})
	go func() {
		defer close(d)
		stop := context.AfterFunc(ctx, it.Stop) // unblocks Next
		defer func() { stop(); it.Stop() }()
		for {
			m, err := it.Next()
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				// The ordered consumer recreates itself on a missed
				// heartbeat; anything else (the stream gone and made
				// again, say): open a new one from where this one was.
				s.log.Warn("change feed interrupted; reopening", "feed", feed, "after", after, "err", err)
				select {
				case <-ctx.Done():
					return
				case <-time.After(time.Second):
				}
				stop()
				it.Stop()
				if it, err = open(after); err != nil {
					if errors.Is(err, context.Canceled) || ctx.Err() != nil {
						return
					}
					it = closedIter{err}
				}
				stop = context.AfterFunc(ctx, it.Stop)
				continue
			}
			md, err := m.Metadata()
			if err != nil {
				continue
			}
			after = md.Sequence.Stream
			c := Change{Doc: strings.TrimPrefix(m.Subject(), prefix), Seq: after}
			if feed == FeedOps {
				_, c.Rev, _ = revRange(m.Headers())
			}
			if checkID(c.Doc) == nil {
				fn(c)
			}
		}
	}()
	return d, nil
}

// closedIter stands for a feed's consumer that could not be reopened:
// its Next fails, so that the loop tries again.
type closedIter struct{ err error }

func (c closedIter) Next(...natsjs.NextOpt) (natsjs.Msg, error) { return nil, c.err }
func (closedIter) Stop()                                        {}
func (closedIter) Drain()                                       {}
