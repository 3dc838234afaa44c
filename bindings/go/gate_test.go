package astack

import (
	"sync"
	"testing"
)

func TestGateClosesOnceAndWaitsForCallsInFlight(t *testing.T) {
	var g gate
	ticket, ok := g.enter()
	if !ok {
		t.Fatal("an open gate refused a call")
	}
	closed := make(chan bool)
	go func() { closed <- g.close() }()
	// close waits for the call in flight; once it has exited, close returns, having closed.
	for !g.closed.Load() {
		select {
		case <-closed:
			t.Fatal("close returned with a call in flight")
		default:
		}
	}
	if _, ok := g.enter(); ok {
		t.Fatal("a closing gate admitted a call")
	}
	g.exit(ticket)
	if !<-closed {
		t.Fatal("the first close did not report closing the gate")
	}
	if g.close() {
		t.Fatal("a second close reported closing the gate")
	}
}

func TestGateCountsCallsFromManyGoroutines(t *testing.T) {
	var g gate
	var wg sync.WaitGroup
	for i := 0; i < 64; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 100; j++ {
				ticket, ok := g.enter()
				if !ok {
					t.Error("an open gate refused a call")
					return
				}
				g.exit(ticket)
			}
		}()
	}
	wg.Wait()
	for i := range g.inflight {
		if n := g.inflight[i].n.Load(); n != 0 {
			t.Fatalf("stripe %d holds %d calls after every call exited", i, n)
		}
	}
	if !g.close() {
		t.Fatal("close did not report closing the gate")
	}
}
