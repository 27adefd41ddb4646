package permissions

import (
	"encoding/binary"
	"sync/atomic"
)

// The compiled form is read in place: a decoded Snapshot keeps the payload
// as one string and finds a name, or a role's or group's grant, by decoding
// the one block of blockSize entries that holds it, the first time a token
// needs it (then keeps it). A cold container's load is the checksum, a
// walk over the block tables and the client profiles: a few milliseconds
// of CPU at 30,000 roles, where decoding everything took ten times that
// and allocated the policy's size again for the collector to scan.
//
// A section is n entries in blocks of blockSize, after a table of where
// each block starts:
//
//	uvarint n, uvarint body length, ceil(n/blockSize) × uint32 (little-endian) offsets into the body, body
//
// The load checks every table (offsets inside the body, strictly rising)
// and, for names, that the blocks' first names rise; a block is checked
// when it is decoded (names rising and below the next block's first, ids in
// range, every byte used). The checksum has already matched, so these only
// keep a damaged snapshot from being misread or panicking: a block that
// fails decodes to nothing, and what needs it grants nothing.

// blockSize is the number of entries in a section's block.
const blockSize = 16

func blocks(n int) int { return (n + blockSize - 1) / blockSize }

func le32(b []byte, at int) uint32 { return binary.LittleEndian.Uint32(b[at:]) }

// section locates a section's blocks in the payload.
type section struct {
	data        []byte
	n           int
	table, body int // where the offsets and the body start
	end         int // where the body ends
}

// readSection reads a section's header and checks its block table.
func (r *reader) section() section {
	sec := section{data: r.b, n: r.count()}
	size := r.count()
	nb := blocks(sec.n)
	sec.table = r.off
	r.bytes(4 * nb)
	sec.body = r.off
	r.bytes(size)
	sec.end = r.off
	if r.err != nil {
		return section{}
	}
	prev := -1
	for k := range nb {
		o := int(le32(r.b, sec.table+4*k))
		if o <= prev || o >= size || k == 0 && o != 0 {
			r.fail()
			return section{}
		}
		prev = o
	}
	if nb == 0 && size != 0 {
		r.fail()
	}
	return sec
}

// block returns block k's bytes.
func (sec *section) block(k int) reader {
	lo, hi := sec.body+int(le32(sec.data, sec.table+4*k)), sec.end
	if k+1 < blocks(sec.n) {
		hi = sec.body + int(le32(sec.data, sec.table+4*(k+1)))
	}
	return reader{b: sec.data[:hi], off: lo}
}

// entries is the number of entries in block k.
func (sec *section) entries(k int) int { return min(blockSize, sec.n-k*blockSize) }

// writeSection writes n entries as a section, item(w, i) writing entry i.
func (w *writer) section(n int, item func(w *writer, i int)) {
	var body writer
	var offsets []byte
	for i := range n {
		if i%blockSize == 0 {
			offsets = binary.LittleEndian.AppendUint32(offsets, uint32(len(body.b)))
		}
		item(&body, i)
	}
	w.uvarint(uint64(n))
	w.uvarint(uint64(len(body.b)))
	w.b = append(w.b, offsets...)
	w.b = append(w.b, body.b...)
}

// writeNames writes sorted names as a section: a block's first name whole,
// the others as the length shared with the one before and the rest; each
// followed by its value when values is not nil.
func (w *writer) writeNames(names []string, values []int) {
	w.section(len(names), func(w *writer, i int) {
		if i%blockSize == 0 {
			w.str(names[i])
		} else {
			prev, s := names[i-1], names[i]
			n := 0
			for n < len(s) && n < len(prev) && s[n] == prev[n] {
				n++
			}
			w.uvarint(uint64(n))
			w.str(s[n:])
		}
		if values != nil {
			w.uvarint(uint64(values[i]))
		}
	})
}

// nameList is a section of sorted names, each with a value below limit
// when it has values, read in place.
type nameList struct {
	section
	values bool
	limit  uint64
	cache  []atomic.Pointer[nameBlock]
}

type nameBlock struct {
	names []string
	vals  []uint32
}

// damagedBlock is what a block that fails its checks decodes to.
var damagedBlock = &nameBlock{}

// names reads a nameList and checks that its blocks' first names rise.
func (r *reader) nameList(values bool, limit uint64) nameList {
	l := nameList{section: r.section(), values: values, limit: limit}
	if r.err != nil {
		return nameList{}
	}
	nb := blocks(l.n)
	l.cache = make([]atomic.Pointer[nameBlock], nb)
	var prev []byte
	for k := range nb {
		first, ok := l.first(k)
		if !ok || k > 0 && string(first) <= string(prev) {
			r.fail()
			return nameList{}
		}
		prev = first
	}
	return l
}

// first is block k's first name, read in place.
func (l *nameList) first(k int) ([]byte, bool) {
	b := l.block(k)
	s := b.strInPlace()
	return s, b.err == nil
}

// decoded returns block k, decoding it the first time.
func (l *nameList) decoded(k int) *nameBlock {
	if b := l.cache[k].Load(); b != nil {
		return b
	}
	b := l.decode(k)
	l.cache[k].Store(b)
	return b
}

func (l *nameList) decode(k int) *nameBlock {
	r := l.block(k)
	n := l.entries(k)
	// Every name of the block in one string: the first whole, then each
	// one's shared part copied from the one before.
	type part struct {
		shared int
		rest   []byte
	}
	parts := make([]part, n)
	out := &nameBlock{names: make([]string, n)}
	if l.values {
		out.vals = make([]uint32, n)
	}
	total, prevLen := 0, 0
	for i := range parts {
		if i > 0 {
			parts[i].shared = int(r.uvarint())
		}
		parts[i].rest = r.strInPlace()
		if l.values {
			v := r.uvarint()
			if v >= l.limit {
				r.fail()
			}
			out.vals[i] = uint32(v)
		}
		if r.err != nil || parts[i].shared > prevLen {
			return damagedBlock
		}
		prevLen = parts[i].shared + len(parts[i].rest)
		total += prevLen
	}
	if r.off != len(r.b) {
		return damagedBlock
	}
	buf := make([]byte, 0, total)
	start := 0
	for _, p := range parts {
		from := len(buf)
		buf = append(buf, buf[start:start+p.shared]...)
		buf = append(buf, p.rest...)
		start = from
	}
	all, at := string(buf), 0
	for i, p := range parts {
		l := p.shared + len(p.rest)
		out.names[i], at = all[at:at+l], at+l
		if i > 0 && out.names[i] <= out.names[i-1] {
			return damagedBlock
		}
	}
	if k+1 < blocks(l.n) {
		if next, _ := l.first(k + 1); out.names[n-1] >= string(next) {
			return damagedBlock
		}
	}
	return out
}

// at returns entry i (below l.n): its name and value.
func (l *nameList) at(i int) (string, uint32, bool) {
	b := l.decoded(i / blockSize)
	j := i % blockSize
	if j >= len(b.names) {
		return "", 0, false
	}
	var v uint32
	if b.vals != nil {
		v = b.vals[j]
	}
	return b.names[j], v, true
}

// find returns the position and value of name.
func (l *nameList) find(name string) (int, uint32, bool) {
	nb := blocks(l.n)
	// The last block whose first name is at most name.
	lo, hi := 0, nb
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if first, _ := l.first(m); string(first) <= name {
			lo = m + 1
		} else {
			hi = m
		}
	}
	k := lo - 1
	if k < 0 {
		return 0, 0, false
	}
	b := l.decoded(k)
	j, ok := binarySearch(len(b.names), func(j int) string { return b.names[j] }, name)
	if !ok {
		return 0, 0, false
	}
	var v uint32
	if b.vals != nil {
		v = b.vals[j]
	}
	return k*blockSize + j, v, true
}

// grantList is a section of grants (a role list and a permission list
// each), kept once decoded.
type grantList struct {
	section
	cache []atomic.Pointer[grant]
}

func (r *reader) grantList() grantList {
	g := grantList{section: r.section()}
	if r.err != nil {
		return grantList{}
	}
	g.cache = make([]atomic.Pointer[grant], g.n)
	return g
}

// view is the lookup of a decoded snapshot: its payload, read in place.
type view struct {
	data             []byte
	roles, perms     nameList
	closures, grants grantList
	groups, machines nameList // values: grant numbers
	providers        []string // sorted
	idp              []nameList
}

func (v *view) group(name string) *grant       { return v.granted(&v.groups, name) }
func (v *view) machine(clientID string) *grant { return v.granted(&v.machines, clientID) }
func (v *view) roleName(id uint32) string      { s, _, _ := v.roles.at(int(id)); return s }
func (v *view) permName(id uint32) string      { s, _, _ := v.perms.at(int(id)); return s }
func (v *view) numPerms() int                  { return v.perms.n }
func (v *view) isPerm(name string) bool        { _, _, ok := v.perms.find(name); return ok }
func (v *view) granted(l *nameList, name string) *grant {
	if _, ref, ok := l.find(name); ok {
		return v.grant(&v.grants, int(ref))
	}
	return nil
}

func (v *view) idpGroup(provider, name string) *grant {
	if i, ok := binarySearch(len(v.providers), func(i int) string { return v.providers[i] }, provider); ok {
		return v.granted(&v.idp[i], name)
	}
	return nil
}

func (v *view) role(name string) *grant {
	if i, _, ok := v.roles.find(name); ok {
		return v.grant(&v.closures, i)
	}
	return nil
}

// grant returns entry i of list, decoding it, with names, the first time.
// A damaged entry grants nothing.
func (v *view) grant(list *grantList, i int) *grant {
	if g := list.cache[i].Load(); g != nil {
		return g
	}
	g := v.decodeGrant(list, i)
	list.cache[i].Store(g)
	return g
}

func (v *view) decodeGrant(list *grantList, i int) *grant {
	r := list.block(i / blockSize)
	for range i % blockSize { // the entries before it in its block
		r.skipIDs()
		r.skipIDs()
	}
	var g grant
	g.roles = r.ids(uint64(v.roles.n))
	g.perms = r.ids(uint64(v.perms.n))
	if r.err != nil {
		return noGrant
	}
	g.roleNames = make([]string, len(g.roles))
	for j, id := range g.roles {
		s, _, ok := v.roles.at(int(id))
		if !ok {
			return noGrant
		}
		g.roleNames[j] = s
	}
	g.permNames = make([]string, len(g.perms))
	for j, id := range g.perms {
		s, _, ok := v.perms.at(int(id))
		if !ok {
			return noGrant
		}
		g.permNames[j] = s
	}
	if len(g.roles) == 0 {
		g.roleNames = nil
	}
	if len(g.perms) == 0 {
		g.permNames = nil
	}
	return &g
}

// skipIDs passes over an id list that writer.ids wrote.
func (r *reader) skipIDs() {
	for range r.count() {
		r.uvarint()
	}
}
