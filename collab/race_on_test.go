//go:build race

package collab

// raceBuild: this test binary has the race detector, which multiplies the
// memory of every goroutine; memory is measured in a child built without it.
const raceBuild = true
