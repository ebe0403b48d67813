package collab

import (
	"fmt"
	"math"
	"strconv"
	"time"
)

// restoreLimiter bounds how often restores may be made, per client
// address and per document: one restore can add a whole document's text
// to the op log (2 MB and more), so four clients alternating two
// revisions of a large document used to add some 10 MB a second.
// MaxDocHistory and the store's bounds stop that in the end; this keeps
// it slow on the way. It is safe for concurrent use.
type restoreLimiter struct {
	rate       float64
	burst      int
	byAddr     *addrBuckets
	byDoc      *addrBuckets
	retryAfter string
}

func newRestoreLimiter(o Options) *restoreLimiter {
	return &restoreLimiter{
		rate:       o.RestoreRate,
		burst:      o.RestoreBurst,
		byAddr:     newAddrBuckets(o.RestoreRate, o.RestoreBurst, o.MaxTrackedAddrs),
		byDoc:      newAddrBuckets(o.RestoreRate, o.RestoreBurst, o.MaxTrackedAddrs),
		retryAfter: strconv.Itoa(max(1, int(math.Ceil(1/o.RestoreRate)))),
	}
}

// allow reports whether a restore of document id by the client at addr
// may go ahead now, and if not, why. The address is charged first, so a
// client over its own rate does not use up the document's.
func (l *restoreLimiter) allow(addr, id string, now time.Time) (ok bool, why string) {
	if !l.byAddr.allow(addr, now) {
		return false, "from this address"
	}
	if !l.byDoc.allow(id, now) {
		return false, "of this document"
	}
	return true, ""
}

func (l *restoreLimiter) message(why string) string {
	return fmt.Sprintf("more than %g restores per second (burst %d) %s; try again later", l.rate, l.burst, why)
}
