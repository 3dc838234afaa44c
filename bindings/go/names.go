package astack

/*
#include <astack.h>
*/
import "C"

import (
	"bytes"
	"unsafe"
)

// names turns the NUL-terminated key and account ids of a C decision into Go strings.
type names struct{}

// cbytes is the bytes of a NUL-terminated C array, without copying.
func cbytes(p *C.char, size int) []byte {
	b := unsafe.Slice((*byte)(unsafe.Pointer(p)), size)
	if i := bytes.IndexByte(b, 0); i >= 0 {
		return b[:i]
	}
	return b
}

func (names) get(keyID *[C.ASTACK_KEY_ID_SIZE]C.char, accountID *[C.ASTACK_ACCOUNT_ID_SIZE]C.char) (string, string) {
	return string(cbytes(&keyID[0], len(keyID))), string(cbytes(&accountID[0], len(accountID)))
}
