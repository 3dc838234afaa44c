// Command authbench runs, in one process, Authorize through cgo and the same policy in plain
// Go over 100,000 keys, serial and parallel, and prints both figures and their ratio.
package main

import (
	"fmt"
	"os"
	"runtime"
	"testing"

	"github.com/astack-dev/astack/bindings/go/internal/authbench"
)

func main() {
	testing.Init()
	fmt.Printf("setting up %d keys...\n", authbench.Keys)
	authbench.Setup()
	fmt.Printf("GOMAXPROCS=%d, %s\n\n", runtime.GOMAXPROCS(0), runtime.Version())
	fmt.Printf("%-10s %14s %14s %10s %12s\n", "", "astack ns/op", "plain ns/op", "ratio", "astack B/op")
	for _, mode := range []struct {
		name        string
		ours, plain func(*testing.B)
	}{
		{"serial", authbench.Ours, authbench.PlainGo},
		{"parallel", authbench.OursParallel, authbench.PlainGoParallel},
	} {
		ours := testing.Benchmark(mode.ours)
		plain := testing.Benchmark(mode.plain)
		if ours.N == 0 || plain.N == 0 {
			fmt.Fprintln(os.Stderr, "a benchmark failed")
			os.Exit(1)
		}
		o, p := float64(ours.T.Nanoseconds())/float64(ours.N), float64(plain.T.Nanoseconds())/float64(plain.N)
		fmt.Printf("%-10s %14.0f %14.0f %9.2fx %12d\n", mode.name, o, p, p/o, ours.AllocedBytesPerOp())
	}
	fmt.Println("\nratio = plain-Go time / astack time (above 1: astack is faster)")
}
