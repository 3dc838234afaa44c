// Command authbench runs, in one process, Authorize through cgo and the same policy in plain
// Go over 100,000 keys, serial and parallel, and prints both figures and their ratio.
//
// The machine may be shared, and its speed drifts over seconds: the two sides run in short
// turns, one right after the other, many times over. Each pair of turns gives a ratio; the
// figures printed are the medians of the turns and of the pairs' ratios.
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"slices"
	"testing"

	"github.com/astack-dev/astack/bindings/go/internal/authbench"
)

func main() {
	testing.Init()
	pairs := flag.Int("pairs", 21, "pairs of turns per mode")
	turn := flag.String("turn", "200ms", "length of one turn")
	flag.Parse()
	if err := flag.Set("test.benchtime", *turn); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	fmt.Printf("setting up %d keys...\n", authbench.Keys)
	authbench.Setup()
	fmt.Printf("GOMAXPROCS=%d, %s, %d pairs of %s turns per mode\n\n", runtime.GOMAXPROCS(0), runtime.Version(), *pairs, *turn)
	fmt.Printf("%-10s %14s %14s %10s %12s\n", "", "astack ns/op", "plain ns/op", "ratio", "astack B/op")
	var benchLines []string
	for _, mode := range []struct {
		name        string
		ours, plain func(*testing.B)
	}{
		{"serial", authbench.Ours, authbench.PlainGo},
		{"parallel", authbench.OursParallel, authbench.PlainGoParallel},
	} {
		var ours, plain, ratios []float64
		var bytes int64
		for i := 0; i < *pairs; i++ {
			o := testing.Benchmark(mode.ours)
			p := testing.Benchmark(mode.plain)
			if o.N == 0 || p.N == 0 {
				fmt.Fprintln(os.Stderr, "a benchmark failed")
				os.Exit(1)
			}
			ours = append(ours, nsPerOp(o))
			plain = append(plain, nsPerOp(p))
			ratios = append(ratios, nsPerOp(p)/nsPerOp(o))
			bytes = o.AllocedBytesPerOp()
		}
		o, p, r := median(ours), median(plain), median(ratios)
		fmt.Printf("%-10s %14.0f %14.0f %9.2fx %12d\n", mode.name, o, p, r, bytes)
		// table.py computes its ratio from ours and peer: give it the pair median's ratio.
		benchLines = append(benchLines, fmt.Sprintf("BENCH go/authorize_%s ours=%.1f peer=%.1f unit=ns aim=<=1x", mode.name, o, o*r))
	}
	fmt.Printf("\nmedians of %d pairs; ratio = plain-Go time / astack time, the median of the pairs' ratios (above 1: astack is faster)\n", *pairs)
	// Machine-readable lines for benches/table.py (make bench).
	for _, line := range benchLines {
		fmt.Println(line)
	}
}

func nsPerOp(r testing.BenchmarkResult) float64 { return float64(r.T.Nanoseconds()) / float64(r.N) }

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}
