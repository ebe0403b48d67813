package client

// Hooks for the tests of package client_test.

// SetMaxQueued sets the bound on queued events, returning the old one.
func SetMaxQueued(n int) int { old := maxQueued; maxQueued = n; return old }

// Queued is the number of events queued for c's listeners.
func Queued(c *Client) int { c.mu.Lock(); defer c.mu.Unlock(); return len(c.queue) }
