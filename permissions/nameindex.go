package permissions

// nameIndex finds a name's position in a list of distinct names: an open
// addressing table of positions, built in one pass without allocating per
// name, so a cold container indexes 30,000 roles or groups in a fraction of
// what a Go map's inserts cost, and a lookup costs one hash and, in all but
// a few slots, one comparison, whatever the number of names.
//
// The hash is FNV-1a, fixed, so the table's layout is a function of the
// policy's names alone. A caller's name (a group in an event, an IdP group a
// user can write) only picks where to look: the longest run of filled
// slots, which the policy's names decide and at most half the table fills,
// bounds the comparisons any name can cause.
type nameIndex struct {
	names []string
	slots []uint32 // position+1, or 0 for an empty slot; a power of two long
}

func newNameIndex(names []string) nameIndex {
	if len(names) == 0 {
		return nameIndex{}
	}
	size := 2
	for size < 2*len(names) {
		size <<= 1
	}
	x := nameIndex{names: names, slots: make([]uint32, size)}
	mask := uint32(size - 1)
	for i, n := range names {
		h := hashName(n) & mask
		for x.slots[h] != 0 {
			h = (h + 1) & mask
		}
		x.slots[h] = uint32(i + 1)
	}
	return x
}

// find returns name's position, if it is in the list.
func (x *nameIndex) find(name string) (int, bool) {
	if len(x.slots) == 0 {
		return 0, false
	}
	mask := uint32(len(x.slots) - 1)
	for h := hashName(name) & mask; ; h = (h + 1) & mask {
		s := x.slots[h]
		if s == 0 {
			return 0, false
		}
		if x.names[s-1] == name {
			return int(s - 1), true
		}
	}
}

func hashName(s string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(s); i++ {
		h ^= uint32(s[i])
		h *= 16777619
	}
	// FNV's low bits mix poorly; the table uses them.
	h ^= h >> 15
	h *= 0x2c1b3c6d
	h ^= h >> 12
	return h
}
