package astack

// #include "astack.h"
import "C"

import (
	"sync"
	"sync/atomic"
)

// keyIDsChunk is how many keys one chunk of a keyIDs table holds.
const keyIDsChunk = 1024

// keyIDs keeps, for an engine, the id strings of each key it has allowed, by the key's slot
// (astack_decision.key_slot: a number no other key of the engine ever has, and whose key and
// account ids never change). Authorize then hands out the same two strings for every call
// with a key instead of allocating them anew: no allocation, and so no GC work, per call.
//
// Reading takes no lock and writes nothing shared: one atomic load of the table, one of the
// key's entry. The table grows by whole chunks, copied under mu and published by one pointer.
type keyIDs struct {
	mu     sync.Mutex
	chunks atomic.Pointer[[]*[keyIDsChunk]atomic.Pointer[keyIDPair]]
}

type keyIDPair struct{ keyID, accountID string }

// get returns the ids of the allowed decision cd, from the table when its key has been seen.
func (t *keyIDs) get(cd *C.astack_decision) (keyID, accountID string) {
	slot := uint32(cd.key_slot)
	if slot == C.ASTACK_NO_KEY_SLOT {
		return ids(cd)
	}
	if chunks := t.chunks.Load(); chunks != nil && int(slot/keyIDsChunk) < len(*chunks) {
		if p := (*chunks)[slot/keyIDsChunk][slot%keyIDsChunk].Load(); p != nil {
			return p.keyID, p.accountID
		}
	}
	keyID, accountID = ids(cd)
	t.entry(slot).Store(&keyIDPair{keyID, accountID})
	return keyID, accountID
}

// entry is the place of slot in the table, growing the table to reach it.
func (t *keyIDs) entry(slot uint32) *atomic.Pointer[keyIDPair] {
	i := int(slot / keyIDsChunk)
	chunks := t.chunks.Load()
	if chunks == nil || i >= len(*chunks) {
		t.mu.Lock()
		if chunks = t.chunks.Load(); chunks == nil || i >= len(*chunks) {
			var old []*[keyIDsChunk]atomic.Pointer[keyIDPair]
			if chunks != nil {
				old = *chunks
			}
			grown := make([]*[keyIDsChunk]atomic.Pointer[keyIDPair], max(i+1, 2*len(old)))
			copy(grown, old)
			for j := len(old); j < len(grown); j++ {
				grown[j] = new([keyIDsChunk]atomic.Pointer[keyIDPair])
			}
			chunks = &grown
			t.chunks.Store(chunks)
		}
		t.mu.Unlock()
	}
	return &(*chunks)[i][slot%keyIDsChunk]
}
