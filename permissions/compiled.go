package permissions

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/klauspost/compress/zstd"
)

// The compiled form of a Snapshot: what apply writes and a cold container
// reads, so that the container does no parsing of the policy and no
// compiling. It holds every role's closure, the distinct grants of groups,
// machines, IdP groups and the defaults, and each client profile's claim,
// allow and scope lists, with every name once, front-coded in name order.
//
// Layout: SnapshotMagic, the format (2 bytes, big-endian), the payload's
// length and the body's length once decompressed (4 bytes each), the
// SHA-256 of those lengths and the payload (32 bytes), then the payload: the label (a length and
// the bytes), then the body compressed with zstd. The body is uvarints,
// strings as a length and bytes, id lists delta-coded, and the large parts
// (names, closures, grants) as sections of blocks read in place (see
// layout.go), compressed in frames that are decompressed when first read.
// Compressed, the body is a sixth of its size: what DynamoDB reads and the
// SDK decodes (as base64 in JSON) at a cold start shrinks with it. Nothing in it
// is trusted before the checksum matches, and every count, offset and id
// is checked against what is there, so damaged input is refused or grants
// nothing, never misread.

// SnapshotMagic starts every compiled snapshot.
const SnapshotMagic = "pretoken-snapshot\n"

// SnapshotFormat is the compiled snapshot format this code reads and writes.
// A change to the layout takes a new number; older ones are refused.
// Format 1 was decoded whole at load; format 2 is compressed and read in
// place.
const SnapshotFormat = 2

const (
	lengthsAt = len(SnapshotMagic) + 2 // the payload's length, then the body's
	sumAt     = lengthsAt + 8
	headerLen = sumAt + sha256.Size
)

// Errors of DecodeSnapshot. Both tell the operator what to do: a compiled
// snapshot is derived from the policy, so making it again repairs it.
var (
	ErrSnapshotFormat  = errors.New("the compiled policy is of another pretoken version's format; run pretoken apply (or pretoken compile, for a bundled file)")
	ErrSnapshotDamaged = errors.New("the compiled policy is damaged or incomplete; run pretoken apply (or pretoken compile, for a bundled file)")
)

// IsCompiledSnapshot reports whether data starts like a compiled snapshot.
func IsCompiledSnapshot(data []byte) bool { return bytes.HasPrefix(data, []byte(SnapshotMagic)) }

// CompiledLabel returns the label a compiled snapshot was encoded with (the
// policy's content hash), without decoding the rest; "" if data is not a
// whole, intact snapshot of this format.
func CompiledLabel(data []byte) string {
	payload, _, err := checkHeader(data)
	if err != nil {
		return ""
	}
	r := reader{b: payload}
	return r.str()
}

// EncodeSnapshot returns the compiled form of s, labelled label (the
// policy's content hash; DecodeSnapshot's caller gives the version).
func EncodeSnapshot(s *Snapshot, label string) []byte {
	if v, ok := s.ix.(*view); ok { // decoded: its body, under this label
		if body := v.body.all(); body != nil {
			return seal(label, body)
		}
		return nil
	}
	t := s.ix.(*tables)
	var secs sections
	w := &secs.head
	w.uvarint(uint64(s.limits.MaxTokenBytes))
	w.str(s.limits.OnOverflow)
	w.str(s.tenancy.Active)
	secs.names(t.roleNames, nil)
	secs.names(t.permNames, nil)
	secs.section(len(t.roles), func(w *writer, i int) {
		w.ids(t.roles[i].roles)
		w.ids(t.roles[i].perms)
	})
	// Grants are kept once each: many groups map to the same roles.
	var grants []*grant
	index := make(map[*grant]int)
	byContent := make(map[string]int)
	ref := func(g *grant) int {
		if i, ok := index[g]; ok {
			return i
		}
		var k writer
		k.ids(g.roles)
		k.ids(g.perms)
		i, ok := byContent[string(k.b)]
		if !ok {
			i = len(grants)
			grants = append(grants, g)
			byContent[string(k.b)] = i
		}
		index[g] = i
		return i
	}
	type named struct {
		names []string
		refs  []int
	}
	table := func(m map[string]*grant) named {
		var n named
		n.names = slices.Sorted(maps.Keys(m))
		for _, name := range n.names {
			n.refs = append(n.refs, ref(m[name]))
		}
		return n
	}
	def := ref(s.defaults)
	groups := named{names: t.groupIdx.names}
	for _, g := range t.groups {
		groups.refs = append(groups.refs, ref(g))
	}
	machines := table(t.machines)
	idp := make([]named, len(s.idp))
	for i, e := range s.idp {
		idp[i] = table(t.idpGroups[e.Provider])
	}
	secs.section(len(grants), func(w *writer, i int) {
		w.ids(grants[i].roles)
		w.ids(grants[i].perms)
	})
	w.uvarint(uint64(def))
	secs.names(groups.names, orEmpty(groups.refs))
	secs.names(machines.names, orEmpty(machines.refs))
	w.uvarint(uint64(len(s.idp)))
	for i, e := range s.idp {
		w.str(e.Provider)
		w.str(e.Attribute)
		secs.names(idp[i].names, orEmpty(idp[i].refs))
	}
	ids := slices.Sorted(maps.Keys(s.profiles))
	w.uvarint(uint64(len(ids)))
	for _, id := range ids {
		p := s.profiles[id]
		w.str(id)
		for _, t := range p.tokens {
			w.uvarint(uint64(len(t.claims)))
			for _, c := range t.claims {
				w.str(c.name)
				w.uvarint(uint64(c.kind))
				w.str(c.attribute)
			}
			w.flag(t.restricted)
			if t.restricted {
				w.b = append(w.b, t.allowed...)
			}
			w.str(t.scopePrefix)
			w.flag(t.scopes != nil)
			w.strs(t.suppressScopes)
			w.strs(t.suppressClaims)
		}
	}
	var body writer
	body.uvarint(uint64(len(w.b)))
	body.b = append(body.b, w.b...)
	body.b = append(body.b, secs.area.b...)
	return seal(label, body.b)
}

// orEmpty makes a nil list of values an empty one: a section with values.
func orEmpty(refs []int) []int {
	if refs == nil {
		return []int{}
	}
	return refs
}

// seal makes the compiled form of body, labelled label: the header, the
// label, the frames' lengths and the frames (body compressed, frameSize
// bytes of it at a time).
func seal(label string, body []byte) []byte {
	var w writer
	w.str(label)
	var compressed []byte
	w.uvarint(uint64(frames(len(body))))
	for at := 0; at < len(body); at += frameSize {
		n := len(compressed)
		compressed = compress(compressed, body[at:min(at+frameSize, len(body))])
		w.uvarint(uint64(len(compressed) - n))
	}
	w.b = append(w.b, compressed...)
	out := make([]byte, headerLen, headerLen+len(w.b))
	copy(out, SnapshotMagic)
	binary.BigEndian.PutUint16(out[len(SnapshotMagic):], SnapshotFormat)
	binary.BigEndian.PutUint32(out[lengthsAt:], uint32(len(w.b)))
	binary.BigEndian.PutUint32(out[lengthsAt+4:], uint32(len(body)))
	copy(out[sumAt:], checksum(out[lengthsAt:sumAt], w.b))
	return append(out, w.b...)
}

// checksum is the SHA-256 of the header's lengths and the payload.
func checksum(lengths, payload []byte) []byte {
	h := sha256.New()
	h.Write(lengths)
	h.Write(payload)
	return h.Sum(nil)
}

// checkHeader checks data's header and checksum, and returns the payload
// and the body's length once decompressed.
func checkHeader(data []byte) (payload []byte, bodyLen int, err error) {
	if !IsCompiledSnapshot(data) {
		return nil, 0, fmt.Errorf("%w (not a compiled snapshot)", ErrSnapshotDamaged)
	}
	if len(data) < headerLen {
		return nil, 0, ErrSnapshotDamaged
	}
	if f := binary.BigEndian.Uint16(data[len(SnapshotMagic):]); f != SnapshotFormat {
		return nil, 0, fmt.Errorf("%w (format %d; this pretoken reads format %d)", ErrSnapshotFormat, f, SnapshotFormat)
	}
	n := binary.BigEndian.Uint32(data[lengthsAt:])
	payload = data[headerLen:]
	if uint64(len(payload)) != uint64(n) {
		return nil, 0, fmt.Errorf("%w (%d bytes where %d were written)", ErrSnapshotDamaged, len(payload), n)
	}
	if !bytes.Equal(checksum(data[lengthsAt:sumAt], payload), data[sumAt:headerLen]) {
		return nil, 0, fmt.Errorf("%w (checksum)", ErrSnapshotDamaged)
	}
	return payload, int(binary.BigEndian.Uint32(data[lengthsAt+4:])), nil
}

// compress appends a frame of the body, compressed, to dst. The encoder
// works on one goroutine at a fixed level, so the bytes are a function of
// the body. (SpeedBetterCompression makes smaller frames of a snapshot's
// body than SpeedBestCompression, and faster.)
func compress(dst, frame []byte) []byte { return encoder().EncodeAll(frame, dst) }

var encoder = sync.OnceValue(func() *zstd.Encoder {
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedBetterCompression), zstd.WithEncoderConcurrency(1),
		zstd.WithWindowSize(frameSize), zstd.WithEncoderCRC(false)) // the header's checksum covers the payload
	if err != nil {
		panic(err) // the options are constants
	}
	return enc
})

// framed returns the body of a payload's frames (what follows the label),
// n bytes long, to be decompressed a frame at a time.
func framed(payload []byte, n int) (*lazyBody, error) {
	if n > maxBodyBytes {
		return nil, fmt.Errorf("%w (%d bytes once decompressed)", ErrSnapshotDamaged, n)
	}
	r := reader{b: payload}
	count := r.count()
	if count != frames(n) {
		return nil, ErrSnapshotDamaged
	}
	lengths := make([]int, count)
	total := 0
	for i := range lengths {
		lengths[i] = r.count()
		total += lengths[i]
	}
	if r.err != nil || total != len(payload)-r.off {
		return nil, ErrSnapshotDamaged
	}
	// The frames are read when tokens need them: a copy of them, so that
	// nothing the caller does to data later reaches the snapshot.
	compressed := bytes.Clone(payload[r.off:])
	b := &lazyBody{raw: make([]byte, n), frames: make([][]byte, count), done: make([]atomic.Bool, count)}
	for i, l := range lengths {
		b.frames[i], compressed = compressed[:l:l], compressed[l:]
	}
	return b, nil
}

// DecodeSnapshot reads a compiled snapshot and labels it version. It
// refuses (ErrSnapshotFormat, ErrSnapshotDamaged) anything but an intact
// snapshot of SnapshotFormat. The snapshot it returns has no Policy, and
// reads its body in place: its load is the checksum and the head's frame,
// whatever the number of roles.
func DecodeSnapshot(data []byte, version string) (*Snapshot, error) {
	s, _, err := decodeLabelled(data, version)
	return s, err
}

// decodeLabelled is DecodeSnapshot, also returning the label it was
// encoded with (read under the same checksum).
func decodeLabelled(data []byte, version string) (*Snapshot, string, error) {
	payload, n, err := checkHeader(data)
	if err != nil {
		return nil, "", err
	}
	r := reader{b: payload}
	label := r.str()
	if r.err != nil {
		return nil, "", r.err
	}
	lb, err := framed(payload[r.off:], n)
	if err != nil {
		return nil, "", err
	}
	s, err := decodeBody(lb, version)
	return s, label, err
}

// decodeBody reads a snapshot's body, labelled version: the head only;
// the sections when tokens need them.
func decodeBody(lb *lazyBody, version string) (*Snapshot, error) {
	if !lb.ensure(0, min(len(lb.raw), binary.MaxVarintLen64)) {
		return nil, ErrSnapshotDamaged
	}
	r := reader{b: lb.raw}
	headLen := r.count()
	base := r.off + headLen
	if r.err != nil || !lb.ensure(r.off, base) {
		return nil, ErrSnapshotDamaged
	}
	r.b = lb.raw[:base]
	v := &view{body: lb}
	s := &Snapshot{version: version, ix: v}
	s.limits.MaxTokenBytes = int(r.uvarint())
	s.limits.OnOverflow = r.str()
	s.tenancy.Active = r.str()
	v.roles = r.nameList(lb, base, false, 0)
	v.perms = r.nameList(lb, base, false, 0)
	v.closures = r.grantList(lb, base)
	v.grants = r.grantList(lb, base)
	if v.closures.n != v.roles.n {
		r.fail()
	}
	def := r.uvarint()
	ng := uint64(v.grants.n)
	if def >= ng {
		r.fail()
	}
	v.groups = r.nameList(lb, base, true, ng)
	v.machines = r.nameList(lb, base, true, ng)
	decodeIdP(&r, s, v, base, ng)
	nprof := r.count()
	s.profiles = make(map[string]*profile, nprof)
	for range nprof {
		p := &profile{id: r.str()}
		for tok := range p.tokens {
			t := &p.tokens[tok]
			for range r.count() {
				c := claimSpec{name: r.str(), kind: claimSource(r.uvarint()), attribute: r.str()}
				t.claims = append(t.claims, c)
			}
			if t.restricted = r.flag(); t.restricted {
				t.allowed = bitset(r.bytes((v.perms.n + 7) / 8))
			}
			t.scopePrefix = r.str()
			if r.flag() && r.err == nil {
				t.scopes = newScopeTable(t.scopePrefix, v)
			}
			t.suppressScopes = r.strs()
			t.suppressClaims = r.strs()
		}
		if _, dup := s.profiles[p.id]; dup {
			r.fail()
		}
		s.profiles[p.id] = p
	}
	if r.err == nil && (len(r.b) != r.off || r.next != uint64(len(lb.raw)-base)) {
		r.fail() // bytes after the end of the head, or of the last section
	}
	if r.err == nil {
		if s.defaults = v.grant(&v.grants, int(def)); s.defaults == noGrant || s.profiles[DefaultProfile] == nil {
			r.fail()
		}
	}
	if r.err != nil {
		return nil, r.err
	}
	s.linkScopeSpace()
	return s, nil
}

// decodeIdP reads the IdP groups part: each provider (in order), its
// attribute, and its groups with their grants. The one place to change
// when the IdP model changes (EncodeSnapshot writes it).
func decodeIdP(r *reader, s *Snapshot, v *view, base int, grants uint64) {
	n := r.count()
	s.idp = nil // appended below; nil when the policy maps no provider, as Compile leaves it
	for range n {
		e := IdPGroup{Provider: r.str(), Attribute: r.str()}
		l := r.nameList(v.body, base, true, grants)
		if r.err != nil || len(v.providers) > 0 && e.Provider <= v.providers[len(v.providers)-1] {
			r.fail()
			return
		}
		s.idp = append(s.idp, e)
		v.providers = append(v.providers, e.Provider)
		v.idp = append(v.idp, l)
	}
}

type writer struct{ b []byte }

func (w *writer) uvarint(v uint64) { w.b = binary.AppendUvarint(w.b, v) }

func (w *writer) flag(b bool) {
	if b {
		w.uvarint(1)
	} else {
		w.uvarint(0)
	}
}

func (w *writer) str(s string) {
	w.uvarint(uint64(len(s)))
	w.b = append(w.b, s...)
}

func (w *writer) strs(list []string) {
	w.uvarint(uint64(len(list)))
	for _, s := range list {
		w.str(s)
	}
}

// ids writes a sorted, duplicate-free id list as its length and the gaps.
func (w *writer) ids(list []uint32) {
	w.uvarint(uint64(len(list)))
	prev := uint32(0)
	for i, id := range list {
		if i == 0 {
			w.uvarint(uint64(id))
		} else {
			w.uvarint(uint64(id - prev - 1))
		}
		prev = id
	}
}

// reader reads what writer wrote. The first problem sets err, and every
// later read then returns zero values, so decoding runs to its end without
// checks at every step and never indexes out of range.
type reader struct {
	b    []byte
	off  int
	err  error
	next uint64 // where the next section must start, from the end of the head
}

func (r *reader) fail() {
	if r.err == nil {
		r.err = ErrSnapshotDamaged
	}
}

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	var x uint64
	var shift uint
	for i := 0; i < binary.MaxVarintLen64 && r.off+i < len(r.b); i++ {
		b := r.b[r.off+i]
		if b < 0x80 {
			if i == binary.MaxVarintLen64-1 && b > 1 {
				break // overflows 64 bits
			}
			r.off += i + 1
			return x | uint64(b)<<shift
		}
		x |= uint64(b&0x7f) << shift
		shift += 7
	}
	r.fail()
	return 0
}

// count reads a number of things that each take at least one byte, so a
// damaged count cannot ask for more memory than the input could describe.
func (r *reader) count() int {
	v := r.uvarint()
	if v > uint64(len(r.b)-r.off) {
		r.fail()
		return 0
	}
	return int(v)
}

func (r *reader) flag() bool {
	switch r.uvarint() {
	case 0:
		return false
	case 1:
		return true
	}
	r.fail()
	return false
}

func (r *reader) bytes(n int) []byte {
	if r.err != nil || n < 0 || n > len(r.b)-r.off {
		r.fail()
		return nil
	}
	b := r.b[r.off : r.off+n : r.off+n]
	r.off += n
	return b
}

// str reads a string, copied: the rest of a snapshot is read in place.
func (r *reader) str() string { return string(r.bytes(r.count())) }

// strInPlace reads a string's bytes without copying them.
func (r *reader) strInPlace() []byte { return r.bytes(r.count()) }

func (r *reader) strs() []string {
	n := r.count()
	if n == 0 {
		return nil
	}
	out := make([]string, n)
	for i := range out {
		out[i] = r.str()
	}
	return out
}

// ids reads a list that writer.ids wrote; every id must be below limit.
func (r *reader) ids(limit uint64) []uint32 {
	n := r.count()
	if r.err != nil || n == 0 {
		return nil
	}
	if uint64(n) > limit {
		r.fail()
		return nil
	}
	out := make([]uint32, n)
	var id uint64
	for i := range out {
		d := r.uvarint()
		switch {
		case i == 0:
			id = d
		case d >= limit-id-1: // past the limit; checked before adding, so it cannot wrap
			r.fail()
			return nil
		default:
			id += d + 1
		}
		if r.err != nil || id >= limit {
			r.fail()
			return nil
		}
		out[i] = uint32(id)
	}
	return out
}

// MaxSnapshotBytes is the largest compiled snapshot, counted once
// decompressed, that apply and compile accept. A cold container's load
// costs the same at any size up to it (the checksum and the SDK's decoding
// grow with the compressed bytes, a sixth as many); what grows with the body
// is the memory a container holds once its tokens have read every block of
// it. Measured (make bench, BenchmarkColdScale): the generated 30,000-role
// policy compiles to 1.8 MB (292 KB compressed) and starts at 128 MB's CPU
// share with a peak RSS under 16 MiB; decoded whole it would hold about
// 20 MB. The bound, about 33,000 such roles, keeps even that well inside
// 128 MB; larger policies are not measured, so not accepted.
const MaxSnapshotBytes = 2 << 20

// maxBodyBytes bounds what DecodeSnapshot decompresses: what apply and
// compile accept.
const maxBodyBytes = MaxSnapshotBytes

// ErrSnapshotTooLarge: the compiled policy would not load in time, or in
// the memory, of the smallest function the README allows.
var ErrSnapshotTooLarge = errors.New("the compiled policy is too large for the trigger to load")

// CheckSnapshotSize refuses a compiled snapshot above MaxSnapshotBytes
// once decompressed.
func CheckSnapshotSize(data []byte) error {
	if len(data) < headerLen {
		return ErrSnapshotDamaged
	}
	if n := int(binary.BigEndian.Uint32(data[lengthsAt+4:])); n > MaxSnapshotBytes {
		return fmt.Errorf("%w: %d bytes compiled (%d compressed), more than the %d that load within a cold start at 128 MB; split the policy or shorten its names", ErrSnapshotTooLarge, n, len(data), MaxSnapshotBytes)
	}
	return nil
}

// ServeFile reads a file for serving: a compiled snapshot (pretoken
// compile), decoded without the policy model, or a YAML policy file,
// parsed and compiled. Either way the snapshot is labelled with the
// policy's content hash.
func ServeFile(path string) (*Snapshot, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read policy: %w", err)
	}
	if !IsCompiledSnapshot(data) {
		p, err := ParseFile(path, data)
		if err != nil {
			return nil, err
		}
		return Compile(p, ContentHash(data))
	}
	s, label, err := decodeLabelled(data, "")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	s.version = label
	return s, nil
}

// CompileFile reads and validates the policy file at path and returns its
// compiled snapshot, labelled with the file's content hash, as ServeFile
// and LoadFile label it.
func CompileFile(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read policy: %w", err)
	}
	p, err := ParseFile(path, data)
	if err != nil {
		return nil, err
	}
	label := ContentHash(data)
	s, err := Compile(p, label)
	if err != nil {
		return nil, err
	}
	out := EncodeSnapshot(s, label)
	return out, CheckSnapshotSize(out)
}
