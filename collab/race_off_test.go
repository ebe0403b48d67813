//go:build !race

package collab

// raceBuild: see race_on_test.go.
const raceBuild = false
