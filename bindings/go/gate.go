package astack

import (
	"sync/atomic"
	"time"
	"unsafe"
)

// gateStripes is how many in-flight counters a gate spreads its calls over.
const gateStripes = 32

// gate admits calls into a library object until it is closed, and lets close wait for the
// calls it admitted, so that the object is released only once no call uses it.
//
// It does the work of a sync.RWMutex held for reading by each call, without the one shared
// counter that every call of an RWMutex writes: under parallel load that cache line moves
// between CPUs on every call. A call here writes one of gateStripes padded counters, chosen
// from the address of the calling goroutine's stack, so goroutines running at once on
// different CPUs rarely write the same line.
type gate struct {
	closed   atomic.Bool
	inflight [gateStripes]struct {
		n atomic.Int64
		_ [120]byte // 128 bytes per counter: no two share a cache line or its prefetch pair.
	}
}

// enter admits a call: it returns the ticket to hand to exit when the call is done, or false
// (and nothing to exit) once the gate is closed.
func (g *gate) enter() (ticket int, ok bool) {
	var probe byte
	// Goroutine stacks are at least 8 KiB apart: the address above bit 13 tells goroutines
	// apart. It only spreads the load; any stripe would be correct.
	ticket = int((uintptr(unsafe.Pointer(&probe)) >> 13) % gateStripes)
	n := &g.inflight[ticket].n
	n.Add(1)
	// Sequentially consistent atomics: either close sees this call in flight and waits for it,
	// or this call sees the gate closed.
	if g.closed.Load() {
		n.Add(-1)
		return 0, false
	}
	return ticket, true
}

// exit ends a call admitted by enter.
func (g *gate) exit(ticket int) { g.inflight[ticket].n.Add(-1) }

// close closes the gate, so that enter admits no more calls, and waits until every call it
// admitted has exited. It reports whether this call closed the gate: exactly one call does,
// and only that one may release the object. A later call returns at once.
func (g *gate) close() bool {
	if g.closed.Swap(true) {
		return false
	}
	for i := range g.inflight {
		for g.inflight[i].n.Load() != 0 {
			time.Sleep(10 * time.Microsecond)
		}
	}
	return true
}
