package compile

import (
	"encoding/binary"
	"encoding/hex"

	"k8s.io/apimachinery/pkg/types"
)

// objectUID is an object's UID as an input keeps it: the 16 bytes of a UUID in its canonical
// text form (lowercase, 8-4-4-4-12), which the API server and the file source give every
// object, and the text itself only for any other form. A Credential's input then holds no
// string of its own for it: 48 bytes and an allocation per credential in file mode.
type objectUID struct {
	uuid  [16]byte
	other *types.UID // nil for a canonical UUID
}

// uuidTextLen is the length of a UUID's canonical text.
const uuidTextLen = 36

func uidOf(u types.UID) objectUID {
	var id objectUID
	if len(u) != uuidTextLen {
		return textUID(u)
	}
	for i, src := 0, 0; i < len(id.uuid); i++ {
		if src == 8 || src == 13 || src == 18 || src == 23 {
			if u[src] != '-' {
				return textUID(u)
			}
			src++
		}
		hi, ok1 := lowerHex(u[src])
		lo, ok2 := lowerHex(u[src+1])
		if !ok1 || !ok2 {
			return textUID(u)
		}
		id.uuid[i] = hi<<4 | lo
		src += 2
	}
	return id
}

// textUID keeps u as its text. Only this path allocates: had uidOf taken u's address, u
// would be moved to the heap on every call.
func textUID(u types.UID) objectUID { return objectUID{other: &u} }

func lowerHex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

// appendText appends the UID as it was given.
func (id objectUID) appendText(b []byte) []byte {
	if id.other != nil {
		return append(b, *id.other...)
	}
	b = append(hex.AppendEncode(b, id.uuid[0:4]), '-')
	b = append(hex.AppendEncode(b, id.uuid[4:6]), '-')
	b = append(hex.AppendEncode(b, id.uuid[6:8]), '-')
	b = append(hex.AppendEncode(b, id.uuid[8:10]), '-')
	return hex.AppendEncode(b, id.uuid[10:16])
}

// textLen is the length of the UID as it was given.
func (id objectUID) textLen() int {
	if id.other != nil {
		return len(*id.other)
	}
	return uuidTextLen
}

// text returns the UID as it was given; of a UUID, it allocates.
func (id objectUID) text() types.UID {
	if id.other != nil {
		return *id.other
	}
	return types.UID(id.appendText(make([]byte, 0, uuidTextLen)))
}

// appendKey appends the UID in a form that tells any two UIDs apart and costs no formatting:
// 0xff and the 16 bytes of a UUID, or 0x00, the length (4 bytes, big-endian) and the text of
// any other UID.
func (id objectUID) appendKey(b []byte) []byte {
	if id.other == nil {
		return append(append(b, 0xff), id.uuid[:]...)
	}
	b = binary.BigEndian.AppendUint32(append(b, 0), uint32(len(*id.other)))
	return append(b, *id.other...)
}
