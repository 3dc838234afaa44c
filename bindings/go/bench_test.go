package astack_test

import (
	"testing"

	"github.com/astack-dev/astack/bindings/go/internal/authbench"
)

// Authorize through cgo beside the same policy in plain Go, over 100,000 keys
// (`make bench-go`; `go run ./cmd/authbench` prints the ratio).
func BenchmarkAuthorize(b *testing.B) {
	b.Run("astack/serial", authbench.Ours)
	b.Run("plain-go/serial", authbench.PlainGo)
	b.Run("astack/parallel", authbench.OursParallel)
	b.Run("plain-go/parallel", authbench.PlainGoParallel)
}
