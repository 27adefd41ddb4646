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
	"strings"
)

// The compiled form of a Snapshot: what apply writes and a cold container
// reads, so that the container does no parsing of the policy and no
// compiling. It holds every role's closure, the distinct grants of groups,
// machines, IdP groups and the defaults, and each client profile's claim,
// allow and scope lists, with every name once, front-coded in name order.
//
// Layout: SnapshotMagic, the format (2 bytes, big-endian), the payload's
// length (4 bytes) and SHA-256 (32 bytes), then the payload: uvarints,
// strings as a length and bytes, id lists delta-coded. Decoding costs time
// and memory in proportion to the bytes; nothing in it is trusted before
// the checksum matches, and every count and id is checked against what is
// left, so damaged input is refused, never misread.

// SnapshotMagic starts every compiled snapshot.
const SnapshotMagic = "pretoken-snapshot\n"

// SnapshotFormat is the compiled snapshot format this code reads and writes.
// A change to the layout takes a new number; older ones are refused.
const SnapshotFormat = 1

const headerLen = len(SnapshotMagic) + 2 + 4 + sha256.Size

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
	payload, err := checkHeader(data)
	if err != nil {
		return ""
	}
	r := reader{b: payload}
	return r.str()
}

// EncodeSnapshot returns the compiled form of s, labelled label (the
// policy's content hash; DecodeSnapshot's caller gives the version).
func EncodeSnapshot(s *Snapshot, label string) []byte {
	var w writer
	w.str(label)
	w.uvarint(uint64(s.limits.MaxTokenBytes))
	w.str(s.limits.OnOverflow)
	w.str(s.tenancy.Active)
	w.names(s.roleNames)
	w.names(s.permNames)
	for i := range s.roles {
		w.ids(s.roles[i].roles)
		w.ids(s.roles[i].perms)
	}
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
	groups := named{names: s.groupIdx.names}
	for _, g := range s.groups {
		groups.refs = append(groups.refs, ref(g))
	}
	machines := table(s.machines)
	idp := make([]named, len(s.idp))
	for i, e := range s.idp {
		idp[i] = table(s.idpGroups[e.Provider])
	}
	w.uvarint(uint64(len(grants)))
	for _, g := range grants {
		w.ids(g.roles)
		w.ids(g.perms)
	}
	w.uvarint(uint64(def))
	for _, t := range []named{groups, machines} {
		w.names(t.names)
		for _, r := range t.refs {
			w.uvarint(uint64(r))
		}
	}
	encodeIdP(&w, s.idp, func(i int) ([]string, []int) { return idp[i].names, idp[i].refs })
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
			if t.allowed == nil {
				w.uvarint(0)
			} else {
				w.uvarint(1)
				bits := make([]byte, (len(t.allowed)+7)/8)
				for i, ok := range t.allowed {
					if ok {
						bits[i/8] |= 1 << (i % 8)
					}
				}
				w.b = append(w.b, bits...)
			}
			w.str(t.scopePrefix)
			if t.scopes == nil {
				w.uvarint(0)
			} else {
				w.uvarint(1)
			}
			w.strs(t.suppressScopes)
			w.strs(t.suppressClaims)
		}
	}
	out := make([]byte, headerLen, headerLen+len(w.b))
	copy(out, SnapshotMagic)
	binary.BigEndian.PutUint16(out[len(SnapshotMagic):], SnapshotFormat)
	binary.BigEndian.PutUint32(out[len(SnapshotMagic)+2:], uint32(len(w.b)))
	sum := sha256.Sum256(w.b)
	copy(out[len(SnapshotMagic)+6:], sum[:])
	return append(out, w.b...)
}

// encodeIdP writes the IdP groups part: each provider (sorted), its
// attribute, and each of its IdP groups with its grant. The one place to
// change when the IdP model changes.
func encodeIdP(w *writer, entries IdPGroups, table func(i int) (names []string, refs []int)) {
	w.uvarint(uint64(len(entries)))
	for i, e := range entries {
		w.str(e.Provider)
		w.str(e.Attribute)
		names, refs := table(i)
		w.names(names)
		for _, r := range refs {
			w.uvarint(uint64(r))
		}
	}
}

// decodeIdP reads what encodeIdP wrote.
func decodeIdP(r *reader, s *Snapshot, grants []*grant) {
	n := r.count()
	s.idp = nil // appended below; nil when the policy maps no provider, as Compile leaves it
	s.idpGroups = make(map[string]map[string]*grant, n)
	for range n {
		e := IdPGroup{Provider: r.str(), Attribute: r.str()}
		names := r.names()
		m := make(map[string]*grant, len(names))
		for _, g := range names {
			m[g] = r.grantRef(grants)
		}
		if _, dup := s.idpGroups[e.Provider]; dup || r.err != nil {
			r.fail()
			return
		}
		s.idp = append(s.idp, e)
		s.idpGroups[e.Provider] = m
	}
}

func checkHeader(data []byte) ([]byte, error) {
	if !IsCompiledSnapshot(data) {
		return nil, fmt.Errorf("%w (not a compiled snapshot)", ErrSnapshotDamaged)
	}
	if len(data) < headerLen {
		return nil, ErrSnapshotDamaged
	}
	if f := binary.BigEndian.Uint16(data[len(SnapshotMagic):]); f != SnapshotFormat {
		return nil, fmt.Errorf("%w (format %d; this pretoken reads format %d)", ErrSnapshotFormat, f, SnapshotFormat)
	}
	n := binary.BigEndian.Uint32(data[len(SnapshotMagic)+2:])
	payload := data[headerLen:]
	if uint64(len(payload)) != uint64(n) {
		return nil, fmt.Errorf("%w (%d bytes where %d were written)", ErrSnapshotDamaged, len(payload), n)
	}
	if sum := sha256.Sum256(payload); !bytes.Equal(sum[:], data[len(SnapshotMagic)+6:headerLen]) {
		return nil, fmt.Errorf("%w (checksum)", ErrSnapshotDamaged)
	}
	return payload, nil
}

// DecodeSnapshot reads a compiled snapshot and labels it version. It
// refuses (ErrSnapshotFormat, ErrSnapshotDamaged) anything but an intact
// snapshot of SnapshotFormat. The snapshot it returns has no Policy.
func DecodeSnapshot(data []byte, version string) (*Snapshot, error) {
	payload, err := checkHeader(data)
	if err != nil {
		return nil, err
	}
	r := reader{b: payload}
	s := &Snapshot{version: version}
	r.str() // the label: CompiledLabel reads it
	s.limits.MaxTokenBytes = int(r.uvarint())
	s.limits.OnOverflow = r.str()
	s.tenancy.Active = r.str()
	s.roleNames = r.names()
	s.permNames = r.names()
	nr, np := uint64(len(s.roleNames)), uint64(len(s.permNames))
	s.roles = make([]grant, len(s.roleNames))
	var pool idPool
	for i := range s.roles {
		s.roles[i].roles = r.ids(&pool, nr)
		s.roles[i].perms = r.ids(&pool, np)
	}
	s.roleIdx = newNameIndex(s.roleNames)
	ng := r.count()
	grants := make([]*grant, 0, ng)
	backing := make([]grant, ng)
	for i := range backing {
		backing[i].roles = r.ids(&pool, nr)
		backing[i].perms = r.ids(&pool, np)
		grants = append(grants, &backing[i])
	}
	if r.err == nil {
		s.nameGrants(backing)
	}
	s.defaults = r.grantRef(grants)
	groups := r.names()
	s.groupIdx = newNameIndex(groups)
	s.groups = make([]*grant, len(groups))
	for i := range groups {
		s.groups[i] = r.grantRef(grants)
	}
	machines := r.names()
	s.machines = make(map[string]*grant, len(machines))
	for _, n := range machines {
		s.machines[n] = r.grantRef(grants)
	}
	decodeIdP(&r, s, grants)
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
			if r.flag() {
				bits := r.bytes((len(s.permNames) + 7) / 8)
				if r.err == nil {
					t.allowed = make([]bool, len(s.permNames))
					for i := range t.allowed {
						t.allowed[i] = bits[i/8]&(1<<(i%8)) != 0
					}
				}
			}
			t.scopePrefix = r.str()
			if r.flag() && r.err == nil {
				t.scopes = prefixed(t.scopePrefix, s.permNames)
			}
			t.suppressScopes = r.strs()
			t.suppressClaims = r.strs()
		}
		if _, dup := s.profiles[p.id]; dup {
			r.fail()
		}
		s.profiles[p.id] = p
	}
	if r.err == nil && len(r.b) != r.off {
		r.fail() // bytes after the end
	}
	if r.err == nil && (s.profiles[DefaultProfile] == nil || s.defaults == nil) {
		r.fail()
	}
	if r.err != nil {
		return nil, r.err
	}
	s.linkScopeSpace()
	return s, nil
}

// nameGrants gives every decoded grant its names, all from one backing array.
func (s *Snapshot) nameGrants(grants []grant) {
	total := 0
	for _, g := range grants {
		total += len(g.roles) + len(g.perms)
	}
	all := make([]string, total)
	for i := range grants {
		g := &grants[i]
		if len(g.roles) > 0 {
			g.roleNames, all = all[:len(g.roles):len(g.roles)], all[len(g.roles):]
			for j, id := range g.roles {
				g.roleNames[j] = s.roleNames[id]
			}
		}
		if len(g.perms) > 0 {
			g.permNames, all = all[:len(g.perms):len(g.perms)], all[len(g.perms):]
			for j, id := range g.perms {
				g.permNames[j] = s.permNames[id]
			}
		}
	}
}

// prefixed returns prefix+name for every name, all in one string.
func prefixed(prefix string, names []string) []string {
	n := len(prefix) * len(names)
	for _, s := range names {
		n += len(s)
	}
	var b strings.Builder
	b.Grow(n)
	out := make([]string, len(names))
	for i, s := range names {
		start := b.Len()
		b.WriteString(prefix)
		b.WriteString(s)
		out[i] = b.String()[start:]
	}
	return out
}

type writer struct{ b []byte }

func (w *writer) uvarint(v uint64) { w.b = binary.AppendUvarint(w.b, v) }

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

// names writes a sorted list front-coded: each name as the length it
// shares with the one before and the rest.
func (w *writer) names(list []string) {
	total := 0
	for _, s := range list {
		total += len(s)
	}
	w.uvarint(uint64(len(list)))
	w.uvarint(uint64(total))
	prev := ""
	for _, s := range list {
		n := 0
		for n < len(s) && n < len(prev) && s[n] == prev[n] {
			n++
		}
		w.uvarint(uint64(n))
		w.str(s[n:])
		prev = s
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
	b   []byte
	off int
	err error
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
	v, n := binary.Uvarint(r.b[r.off:])
	if n <= 0 {
		r.fail()
		return 0
	}
	r.off += n
	return v
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
	b := r.b[r.off : r.off+n]
	r.off += n
	return b
}

func (r *reader) str() string { return string(r.bytes(r.count())) }

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

// names reads a front-coded list into one string: every name is a part of
// it. The names must come out strictly sorted, as they went in.
func (r *reader) names() []string {
	n := r.count()
	total := r.uvarint() // front-coded: may exceed the bytes left, but not by much
	if r.err != nil || n == 0 || total > 64*uint64(len(r.b)-r.off) {
		if total > 0 {
			r.fail()
		}
		return nil
	}
	var b strings.Builder
	b.Grow(int(total))
	out := make([]string, n)
	prev := ""
	for i := range out {
		shared := r.uvarint()
		rest := r.bytes(r.count())
		if r.err != nil || shared > uint64(len(prev)) || uint64(b.Len())+shared+uint64(len(rest)) > total {
			r.fail()
			return nil
		}
		start := b.Len()
		b.WriteString(prev[:shared])
		b.Write(rest)
		out[i] = b.String()[start:]
		if i > 0 && out[i] <= prev {
			r.fail()
			return nil
		}
		prev = out[i]
	}
	if uint64(b.Len()) != total {
		r.fail()
		return nil
	}
	return out
}

// idPool hands out id lists from large shared arrays, so decoding a
// policy's hundreds of thousands of ids takes few allocations.
type idPool struct{ free []uint32 }

func (p *idPool) take(n int) []uint32 {
	if n > len(p.free) {
		p.free = make([]uint32, max(n, 16<<10))
	}
	out := p.free[:n:n]
	p.free = p.free[n:]
	return out
}

// ids reads a list that writer.ids wrote; every id must be below limit.
func (r *reader) ids(pool *idPool, limit uint64) []uint32 {
	n := r.count()
	if r.err != nil || n == 0 {
		return nil
	}
	if uint64(n) > limit {
		r.fail()
		return nil
	}
	out := pool.take(n)
	var id uint64
	for i := range out {
		d := r.uvarint()
		if i == 0 {
			id = d
		} else {
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

func (r *reader) grantRef(grants []*grant) *grant {
	i := r.uvarint()
	if r.err != nil || i >= uint64(len(grants)) {
		r.fail()
		return noGrant
	}
	return grants[i]
}

// MaxSnapshotBytes is the largest compiled snapshot that apply and compile
// accept. A cold container's load takes time and memory in proportion to
// the snapshot's bytes. Measured at the CPU share of 128 MB (make bench,
// BenchmarkColdScale): a 30,000-role policy compiles to 1.6 MB and loads
// from the table in 0.8 to 1.9 s with a peak RSS of 44 MiB, on a shared
// machine. The bound keeps the largest snapshot inside the first load's
// 2 s and well inside 128 MB: about 39,000 such roles.
const MaxSnapshotBytes = 2 << 20

// ErrSnapshotTooLarge: the compiled policy would not load in time, or in
// the memory, of the smallest function the README allows.
var ErrSnapshotTooLarge = errors.New("the compiled policy is too large for the trigger to load")

// CheckSnapshotSize refuses a compiled snapshot above MaxSnapshotBytes.
func CheckSnapshotSize(data []byte) error {
	if len(data) > MaxSnapshotBytes {
		return fmt.Errorf("%w: %d bytes compiled, more than the %d that load within a cold start at 128 MB; split the policy or shorten its names", ErrSnapshotTooLarge, len(data), MaxSnapshotBytes)
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
	s, err := DecodeSnapshot(data, CompiledLabel(data))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
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
