package permissions

import (
	"encoding/binary"
	"sync"
	"sync/atomic"

	"github.com/klauspost/compress/zstd"
)

// The compiled form is read in place: a decoded Snapshot keeps the body
// and finds a name, or a role's or group's grant, by decoding the one block
// of blockSize entries that holds it, the first time a token needs it (then
// keeps it). The body is compressed in frames of frameSize bytes, each on
// its own, and a frame is decompressed the first time something in it is
// read. A cold container's load is the checksum, the first frame (the head:
// limits, client profiles, where each section is) and the defaults' grant,
// whatever the policy's size; its first token reads the few frames that
// hold its groups, roles and permissions.
//
// The body: the head's length, the head, then the sections. A section is
// n entries in blocks of blockSize, a table of where each block starts
// (uint32s, little-endian) and the blocks; the head holds, for each, n,
// where its table starts (from the end of the head) and the blocks'
// length. A block is checked when it is decoded (inside its section,
// names rising and below the next block's first, ids in range, every byte
// used). The checksum has already matched, so these checks only keep a
// damaged body from being misread or panicking: a block that fails decodes
// to nothing, and what needs it grants nothing.

// blockSize is the number of entries in a section's block.
const blockSize = 16

// maxNameBytes bounds a name in a compiled snapshot: validation allows
// 256 bytes at most; more is damage, refused before it is copied.
const maxNameBytes = 1024

// frameSize is how much of the body a compressed frame holds.
const frameSize = 16 << 10

func blocks(n int) int { return (n + blockSize - 1) / blockSize }

// frames is the number of frames of a body of n bytes.
func frames(n int) int { return (n + frameSize - 1) / frameSize }

func le32(b []byte, at int) uint32 { return binary.LittleEndian.Uint32(b[at:]) }

// slots keeps a value per block of a list, made the first time it is
// asked for; the slots themselves are made at the first ask, not at load.
// Two goroutines may both make a value: the first one kept is the one both
// get.
type slots[T any] struct {
	once sync.Once
	of   []atomic.Pointer[T]
}

// get returns value k of n, made by mk the first time; a nil from mk is
// not kept (it is asked for again).
func (s *slots[T]) get(n, k int, mk func() *T) *T {
	s.once.Do(func() { s.of = make([]atomic.Pointer[T], n) })
	if v := s.of[k].Load(); v != nil {
		return v
	}
	v := mk()
	if v == nil || s.of[k].CompareAndSwap(nil, v) {
		return v
	}
	return s.of[k].Load()
}

// lazyBody is a snapshot's body, decompressed a frame at a time.
type lazyBody struct {
	raw     []byte   // the body; frame k, once decompressed, at k*frameSize
	frames  [][]byte // compressed; nil once decompressed (or for a body given whole)
	done    []atomic.Bool
	mu      sync.Mutex // held while a frame is decompressed
	scratch []byte
	failed  atomic.Bool
}

// wholeBody is a body given decompressed.
func wholeBody(raw []byte) *lazyBody {
	b := &lazyBody{raw: raw, done: make([]atomic.Bool, frames(len(raw)))}
	for i := range b.done {
		b.done[i].Store(true)
	}
	return b
}

// ensure decompresses the frames that hold raw[lo:hi]; false if that is
// outside the body or a frame does not decompress.
func (b *lazyBody) ensure(lo, hi int) bool {
	if lo < 0 || hi > len(b.raw) || lo > hi {
		return false
	}
	if lo == hi {
		return true
	}
	for k := lo / frameSize; k <= (hi-1)/frameSize; k++ {
		if b.done[k].Load() {
			continue
		}
		if !b.decompress(k) {
			return false
		}
	}
	return true
}

func (b *lazyBody) decompress(k int) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.done[k].Load() {
		return true
	}
	if b.failed.Load() {
		return false
	}
	start := k * frameSize
	want := min(frameSize, len(b.raw)-start)
	out, err := frameDecoder().DecodeAll(b.frames[k], b.scratch[:0])
	if err != nil || len(out) != want {
		b.failed.Store(true) // a frame that passed the checksum and does not decompress: damaged
		return false
	}
	b.scratch = out[:0] // the decoder's room to work, kept for the next frame
	copy(b.raw[start:], out)
	b.frames[k] = nil
	b.done[k].Store(true)
	return true
}

// all returns the whole body, decompressed; nil if it does not decompress.
func (b *lazyBody) all() []byte {
	if !b.ensure(0, len(b.raw)) {
		return nil
	}
	return b.raw
}

// frameDecoder decompresses every snapshot's frames: one decoder, safe
// for concurrent use, whose buffers every load reuses.
var frameDecoder = sync.OnceValue(func() *zstd.Decoder {
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true),
		zstd.WithDecoderMaxMemory(2*frameSize), zstd.WithDecoderMaxWindow(2*frameSize))
	if err != nil {
		panic(err) // the options are constants
	}
	return dec
})

// section locates a section's blocks in the body.
type section struct {
	lb          *lazyBody
	n           int
	table, body int // where the offsets and the blocks start
	end         int // where the blocks end
}

// section reads where a section is from the head; base is where the
// sections start. Its table and blocks are checked when read.
func (r *reader) section(lb *lazyBody, base int) section {
	n, rel, size := r.uvarint(), r.uvarint(), r.uvarint()
	limit := uint64(len(lb.raw) - base)
	if n > limit || rel != r.next { // every entry takes a byte at least; each section follows the one before
		r.fail()
	}
	nb := uint64(blocks(int(min(n, limit))))
	if r.err != nil || rel > limit || 4*nb > limit-rel || size > limit-rel-4*nb || nb == 0 && size != 0 || nb > 0 && size < nb {
		r.fail()
		return section{lb: lb}
	}
	sec := section{lb: lb, n: int(n)}
	r.next = rel + 4*nb + size
	sec.table = base + int(rel)
	sec.body = sec.table + int(4*nb)
	sec.end = sec.body + int(size)
	return sec
}

// block returns a reader of block k's bytes, decompressing them; a reader
// that fails if the block's offsets are not inside the section.
func (sec *section) block(k int) reader {
	nb := blocks(sec.n)
	if k < 0 || k >= nb || !sec.lb.ensure(sec.table+4*k, sec.table+4*min(k+2, nb)) {
		return reader{err: ErrSnapshotDamaged}
	}
	lo, hi := sec.body+int(le32(sec.lb.raw, sec.table+4*k)), sec.end
	if k+1 < nb {
		hi = sec.body + int(le32(sec.lb.raw, sec.table+4*(k+1)))
	}
	if lo < sec.body || lo >= hi || hi > sec.end || k == 0 && lo != sec.body || !sec.lb.ensure(lo, hi) {
		return reader{err: ErrSnapshotDamaged}
	}
	return reader{b: sec.lb.raw[:hi], off: lo}
}

// entries is the number of entries in block k.
func (sec *section) entries(k int) int { return min(blockSize, sec.n-k*blockSize) }

// sections writes the body's sections: each one's place into the head, its
// table and blocks into the sections area.
type sections struct{ head, area writer }

// section writes n entries as a section, item(w, i) writing entry i.
func (s *sections) section(n int, item func(w *writer, i int)) {
	var blocks writer
	var offsets []byte
	for i := range n {
		if i%blockSize == 0 {
			offsets = binary.LittleEndian.AppendUint32(offsets, uint32(len(blocks.b)))
		}
		item(&blocks, i)
	}
	s.head.uvarint(uint64(n))
	s.head.uvarint(uint64(len(s.area.b)))
	s.head.uvarint(uint64(len(blocks.b)))
	s.area.b = append(s.area.b, offsets...)
	s.area.b = append(s.area.b, blocks.b...)
}

// names writes sorted names as a section: a block's first name whole,
// the others as the length shared with the one before and the rest; each
// followed by its value when values is not nil.
func (s *sections) names(names []string, values []int) {
	s.section(len(names), func(w *writer, i int) {
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
	blocks *slots[nameBlock] // decoded blocks
	firsts *slots[string]    // blocks' first names, as searches read them
}

type nameBlock struct {
	names []string
	vals  []uint32
}

// damagedBlock is what a block that fails its checks decodes to.
var damagedBlock = &nameBlock{}

// nameList reads where a nameList is.
func (r *reader) nameList(lb *lazyBody, base int, values bool, limit uint64) nameList {
	return nameList{section: r.section(lb, base), values: values, limit: limit, blocks: new(slots[nameBlock]), firsts: new(slots[string])}
}

// first is block k's first name, read in place.
func (l *nameList) first(k int) ([]byte, bool) {
	b := l.block(k)
	s := b.strInPlace()
	return s, b.err == nil
}

// decoded returns block k, decoding it the first time.
func (l *nameList) decoded(k int) *nameBlock {
	return l.blocks.get(blocks(l.n), k, func() *nameBlock { return l.decode(k) })
}

func (l *nameList) decode(k int) *nameBlock {
	r := l.block(k)
	if r.err != nil {
		return damagedBlock
	}
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
			shared := r.uvarint()
			if shared > uint64(prevLen) {
				return damagedBlock
			}
			parts[i].shared = int(shared)
		}
		parts[i].rest = r.strInPlace()
		if l.values {
			v := r.uvarint()
			if v >= l.limit {
				r.fail()
			}
			out.vals[i] = uint32(v)
		}
		if r.err != nil || parts[i].shared+len(parts[i].rest) > maxNameBytes {
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
	i, v, found, _ := l.search(name)
	return i, v, found
}

// search finds name; answered is false when a damaged block stood in the
// way, so that the list cannot say the name is not in it.
func (l *nameList) search(name string) (i int, v uint32, found, answered bool) {
	nb := blocks(l.n)
	// The last block whose first name is at most name.
	lo, hi := 0, nb
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		first, ok := l.firstName(m)
		if !ok {
			return 0, 0, false, false
		}
		if first <= name {
			lo = m + 1
		} else {
			hi = m
		}
	}
	k := lo - 1
	if k < 0 {
		return 0, 0, false, true
	}
	b := l.decoded(k)
	if b == damagedBlock {
		return 0, 0, false, false
	}
	j, ok := binarySearch(len(b.names), func(j int) string { return b.names[j] }, name)
	if !ok {
		return 0, 0, false, true
	}
	if b.vals != nil {
		v = b.vals[j]
	}
	return k*blockSize + j, v, true, true
}

// firstName returns block k's first name, read from the body the first
// time a search needs it and kept: a search reads about log2(blocks) of
// them, and later searches read none of the body.
func (l *nameList) firstName(k int) (string, bool) {
	first := l.firsts.get(blocks(l.n), k, func() *string {
		b, ok := l.first(k)
		if !ok || len(b) > maxNameBytes {
			return nil
		}
		s := string(b)
		return &s
	})
	if first == nil {
		return "", false
	}
	return *first, true
}

// grantList is a section of grants (a role list and a permission list
// each), kept once decoded: a slot per grant, made a block at a time.
type grantList struct {
	section
	blocks *slots[[blockSize]atomic.Pointer[grant]]
}

func (r *reader) grantList(lb *lazyBody, base int) grantList {
	return grantList{section: r.section(lb, base), blocks: new(slots[[blockSize]atomic.Pointer[grant]])}
}

// view is the lookup of a decoded snapshot: its body, read in place.
type view struct {
	body             *lazyBody
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

// isPerm reports whether the policy holds permission name; a damaged
// block in the way answers yes, so that a scope is suppressed rather than
// let through.
func (v *view) isPerm(name string) bool {
	_, _, found, answered := v.perms.search(name)
	return found || !answered
}
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
	if i < 0 || i >= list.n {
		return noGrant
	}
	block := list.blocks.get(blocks(list.n), i/blockSize, func() *[blockSize]atomic.Pointer[grant] {
		return new([blockSize]atomic.Pointer[grant])
	})
	slot := &block[i%blockSize]
	if g := slot.Load(); g != nil {
		return g
	}
	g := v.decodeGrant(list, i)
	slot.Store(g)
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
	var rok, pok bool
	g.roleNames, rok = v.roles.names(g.roles)
	g.permNames, pok = v.perms.names(g.perms)
	if !rok || !pok {
		return noGrant
	}
	return &g
}

// names returns the names of ids (nil for none); false if a block that
// holds one is damaged.
func (l *nameList) names(ids []uint32) ([]string, bool) {
	if len(ids) == 0 {
		return nil, true
	}
	out := make([]string, len(ids))
	for j, id := range ids {
		s, _, ok := l.at(int(id))
		if !ok {
			return nil, false
		}
		out[j] = s
	}
	return out, true
}

// skipIDs passes over an id list that writer.ids wrote.
func (r *reader) skipIDs() {
	for range r.count() {
		r.uvarint()
	}
}
