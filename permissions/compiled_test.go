package permissions

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// randomPolicy is a valid policy drawn from rng: roles inheriting earlier
// roles (to any depth, diamonds included), shared permissions, groups, IdP
// groups, defaults, machines and client profiles with every claim source,
// allow-lists with patterns, scopes with and without a prefix. size
// multiplies the numbers of roles, permissions and groups (1: a few dozen,
// in a block or three of the compiled form; 50: thousands, in hundreds).
func randomPolicy(rng *rand.Rand, size int) *Policy {
	nRoles := 1 + rng.IntN(40*size)
	nPerms := 1 + rng.IntN(30*size)
	perm := func() string { return fmt.Sprintf("res%d:act%d", rng.IntN(nPerms)%7, rng.IntN(nPerms)) }
	roleName := func(i int) string { return fmt.Sprintf("r%02d", i) }
	some := func(max int) []string {
		var out []string
		for range rng.IntN(max + 1) {
			out = append(out, roleName(rng.IntN(nRoles)))
		}
		return dedupe(out)
	}
	p := &Policy{Roles: map[string]Role{}}
	for i := range nRoles {
		var r Role
		for range rng.IntN(5) {
			r.Permissions = append(r.Permissions, perm())
		}
		r.Permissions = dedupe(r.Permissions)
		if i > 0 {
			for range rng.IntN(3) {
				r.Inherits = append(r.Inherits, roleName(rng.IntN(i)))
			}
			r.Inherits = dedupe(r.Inherits)
		}
		p.Roles[roleName(i)] = r
	}
	if rng.IntN(2) == 0 {
		p.Groups = map[string][]string{}
		for i := range rng.IntN(12 * size) {
			p.Groups[fmt.Sprintf("g%d", i)] = some(3)
		}
	}
	p.Defaults.Roles = some(2)
	if rng.IntN(2) == 0 {
		p.Machines = map[string][]string{"m1": some(2), "m2": some(1)}
	}
	if rng.IntN(2) == 0 {
		p.IdPGroups = IdPGroups{{Provider: "Okta", Attribute: "custom:groups", Roles: map[string][]string{"Eng": some(2), "Ops": some(2)}}}
		if rng.IntN(2) == 0 {
			p.IdPGroups = append(p.IdPGroups, IdPGroup{Provider: "Azure", Attribute: "custom:azgroups", Roles: map[string][]string{"Eng": some(1)}})
		}
	}
	if rng.IntN(3) == 0 {
		p.Tenancy = Tenancy{Active: TenancyStored}
	}
	sources := []string{SourceRoles, SourcePermissions, SourceGroups, "attribute:custom:x"}
	if !p.Tenancy.IsZero() {
		sources = append(sources, SourceTenant, SourceTenants)
	}
	token := func(access bool) TokenProfile {
		var t TokenProfile
		for i := range rng.IntN(4) {
			if t.Claims == nil {
				t.Claims = map[string]string{}
			}
			t.Claims[fmt.Sprintf("c%d", i)] = sources[rng.IntN(len(sources))]
		}
		switch rng.IntN(4) {
		case 0:
			t.Allow = AllowList{}
		case 1:
			t.Allow = AllowList{"res1:*", perm()}
		case 2:
			t.Allow = AllowList{"*"}
		}
		if access && rng.IntN(2) == 0 {
			t.Scopes = true
			if rng.IntN(2) == 0 {
				t.ScopePrefix = "api/"
			}
			t.SuppressScopes = []string{"aws.cognito.signin.user.admin"}
		}
		if rng.IntN(3) == 0 {
			t.SuppressClaims = []string{"email"}
		}
		return t
	}
	p.Clients = map[string]ClientProfile{}
	for _, id := range []string{DefaultProfile, "web", "m1"}[:1+rng.IntN(3)] {
		if id == DefaultProfile && rng.IntN(3) == 0 {
			continue // the compiler's own default profile
		}
		p.Clients[id] = ClientProfile{IDToken: token(false), AccessToken: token(true)}
	}
	if rng.IntN(2) == 0 {
		p.Limits = Limits{MaxTokenBytes: 1000 + rng.IntN(3000), OnOverflow: OverflowRolesOnly}
	}
	return p
}

func dedupe(list []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range list {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// randomSubject draws a subject that uses the names of a policy of size
// and names it lacks.
func randomSubject(rng *rand.Rand, size int) Subject {
	pick := func(format string, n, max int) []string {
		var out []string
		for range rng.IntN(max + 1) {
			out = append(out, fmt.Sprintf(format, rng.IntN(n)))
		}
		return out
	}
	sub := Subject{
		ClientID:   []string{"web", "m1", "m2", "other", DefaultProfile}[rng.IntN(5)],
		Machine:    rng.IntN(4) == 0,
		Groups:     pick("g%d", 14*size, 4),
		Roles:      pick("r%02d", 45*size, 3),
		IdPGroups:  map[string][]string{[]string{"Okta", "Azure", "Other"}[rng.IntN(3)]: []string{"Eng", "Ops", "Nobody"}[:rng.IntN(4)]},
		Attributes: map[string]string{"custom:x": "xv"},
		Scopes:     append(pick("api/res1:act%d", 30*size, 2), pick("res2:act%d", 30*size, 2)...),
	}
	if rng.IntN(2) == 0 {
		sub.Tenant, sub.TenantRoles, sub.Tenants = "t1", pick("r%02d", 45, 2), []string{"t1", "t2"}
	}
	return sub
}

// TestCompiledRoundTrip: a decoded snapshot resolves every subject exactly
// as the snapshot compiled from the policy does, and keeps what the trigger
// reads besides (limits, tenancy, IdP attribute, role names, closures).
func TestCompiledRoundTrip(t *testing.T) {
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	for i := range 300 {
		size := 1
		if i%20 == 19 {
			size = 50
		}
		p := randomPolicy(rng, size)
		want, err := Compile(p, "v")
		if err != nil {
			t.Fatalf("policy %d: %v", i, err)
		}
		data := EncodeSnapshot(want, "label")
		got, err := DecodeSnapshot(data, "v")
		if err != nil {
			t.Fatalf("policy %d: decode: %v", i, err)
		}
		if CompiledLabel(data) != "label" || got.Version() != "v" {
			t.Fatalf("label %q, version %q", CompiledLabel(data), got.Version())
		}
		if got.Limits() != want.Limits() || got.Tenancy() != want.Tenancy() || !cmp.Equal(got.IdPGroups(), want.IdPGroups()) {
			t.Fatalf("policy %d: limits, tenancy or IdP attribute differ", i)
		}
		for name := range p.Roles {
			wr, wp := want.Expand([]string{name})
			gr, gp := got.Expand([]string{name})
			if !got.HasRole(name) || !slices.Equal(wr, gr) || !slices.Equal(wp, gp) {
				t.Fatalf("policy %d: role %s: closure differs", i, name)
			}
		}
		for range 40 {
			sub := randomSubject(rng, size)
			if w, g := want.Resolve(sub), got.Resolve(sub); !reflect.DeepEqual(w, g) { // cmp.Diff only to explain
				t.Fatalf("policy %d, subject %+v (-compiled +decoded):\n%s", i, sub, cmp.Diff(w, g))
			}
		}
		// Encoding is a function of the policy, whatever the maps' order:
		// compiled again, the same bytes; and a decoded one keeps them.
		if i%10 == 0 {
			again, err := Compile(p, "v")
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(EncodeSnapshot(again, "label"), data) || !bytes.Equal(EncodeSnapshot(got, "label"), data) {
				t.Fatalf("policy %d: encoding it again gives other bytes", i)
			}
		}
	}
}

func TestCompiledRefusesDamage(t *testing.T) {
	data := EncodeSnapshot(mustCompile(t, testPolicy()), "label")
	if _, err := DecodeSnapshot(data, "v"); err != nil {
		t.Fatal(err)
	}
	t.Run("truncated", func(t *testing.T) {
		for n := 0; n < len(data); n++ {
			if _, err := DecodeSnapshot(data[:n], "v"); !errors.Is(err, ErrSnapshotDamaged) {
				t.Fatalf("%d of %d bytes: %v", n, len(data), err)
			}
		}
	})
	t.Run("a byte changed", func(t *testing.T) {
		for i := len(SnapshotMagic) + 2; i < len(data); i++ {
			bad := bytes.Clone(data)
			bad[i] ^= 0x20
			if _, err := DecodeSnapshot(bad, "v"); !errors.Is(err, ErrSnapshotDamaged) {
				t.Fatalf("byte %d changed: %v", i, err)
			}
		}
	})
	t.Run("bytes appended", func(t *testing.T) {
		if _, err := DecodeSnapshot(append(bytes.Clone(data), 0), "v"); !errors.Is(err, ErrSnapshotDamaged) {
			t.Fatal(err)
		}
	})
	t.Run("a YAML policy", func(t *testing.T) {
		if _, err := DecodeSnapshot([]byte("roles: {}\n"), "v"); !errors.Is(err, ErrSnapshotDamaged) {
			t.Fatal(err)
		}
	})
	t.Run("older and newer formats", func(t *testing.T) {
		for _, f := range []uint16{0, SnapshotFormat - 1, SnapshotFormat + 1} {
			if f == SnapshotFormat {
				continue
			}
			old := bytes.Clone(data)
			binary.BigEndian.PutUint16(old[len(SnapshotMagic):], f)
			_, err := DecodeSnapshot(old, "v")
			if !errors.Is(err, ErrSnapshotFormat) {
				t.Fatalf("format %d: %v", f, err)
			}
			if !bytes.Contains([]byte(err.Error()), []byte("run pretoken apply")) {
				t.Fatalf("format %d: %v does not say what to do", f, err)
			}
		}
	})
}

// body is the decompressed body of a compiled snapshot.
func body(t testing.TB, data []byte) []byte {
	s, err := DecodeSnapshot(data, "v")
	if err != nil {
		t.Fatal(err)
	}
	return s.ix.(*view).body.all()
}

// TestCompiledRefusesWellFormedNonsense: a body whose checksum matches but
// whose content is not a snapshot (ids out of range, unsorted names,
// counts beyond the input) is refused or grants nothing from the damaged
// part, never a panic.
func TestCompiledRefusesWellFormedNonsense(t *testing.T) {
	good := body(t, EncodeSnapshot(mustCompile(t, testPolicy()), "label"))
	rng := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		bad := bytes.Clone(good)
		for range 1 + rng.IntN(3) {
			bad[rng.IntN(len(bad))] = byte(rng.IntN(256))
		}
		bad = bad[:len(bad)-rng.IntN(3)]
		s, err := decodeBody(wholeBody(bad), "v")
		if err == nil {
			// A change can still pass the load's checks (blocks are checked
			// when first read); every lookup must then answer, not panic.
			touchAll(s, testPolicy())
			continue
		}
		if !errors.Is(err, ErrSnapshotDamaged) {
			t.Fatal(err)
		}
	}
}

// FuzzDecodeSnapshot: any body (as if sealed with a matching checksum) is
// refused or answers every lookup; the fuzzer explores the body's parser,
// which the checksum and the compression would otherwise keep it from.
func FuzzDecodeSnapshot(f *testing.F) {
	f.Add(body(f, EncodeSnapshot(mustCompile(f, testPolicy()), "label")))
	f.Fuzz(func(t *testing.T, b []byte) {
		if s, err := decodeBody(wholeBody(b), "v"); err == nil {
			touchAll(s, testPolicy())
		}
	})
}

// touchAll resolves every name p has, through every profile, and expands
// every role: every block of a snapshot of p is read.
func touchAll(s *Snapshot, p *Policy) {
	var groups, roles []string
	for g := range p.Groups {
		groups = append(groups, g)
	}
	for r := range p.Roles {
		roles = append(roles, r)
	}
	for c := range p.Clients {
		s.Resolve(Subject{ClientID: c, Groups: groups, Roles: roles, Scopes: []string{"api/x", "x"}})
		s.Resolve(Subject{ClientID: c, Machine: true})
	}
	for m := range p.Machines {
		s.Resolve(Subject{ClientID: m, Machine: true})
	}
	for _, e := range p.IdPGroups {
		var sent []string
		for g := range e.Roles {
			sent = append(sent, g)
		}
		s.Resolve(Subject{IdPGroups: map[string][]string{e.Provider: sent}})
	}
	s.Expand(roles)
	for _, r := range roles {
		s.HasRole(r)
	}
}

// TestNameList: a section of names read in place finds every name at its
// position with its value, and no name it lacks (before the first, between
// any two, after the last), whatever the number of blocks.
func TestNameList(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, n := range []int{0, 1, 2, blockSize - 1, blockSize, blockSize + 1, 100, 5000} {
		set := map[string]bool{}
		for len(set) < n {
			// Names sharing prefixes of every length, as front coding meets them.
			b := make([]byte, 1+rng.IntN(12))
			for i := range b {
				b[i] = "aab/:z"[rng.IntN(6)]
			}
			set[string(b)] = true
		}
		names := slices.Sorted(maps.Keys(set))
		values := make([]int, n)
		for i := range values {
			values[i] = rng.IntN(1000)
		}
		var secs sections
		secs.names(names, values)
		// As a body holds it: the section after the head, compressed in
		// frames (which the lookups below decompress as they go).
		data := seal("label", append(append(binary.AppendUvarint(nil, uint64(len(secs.head.b))), secs.head.b...), secs.area.b...))
		payload, size, err := checkHeader(data)
		if err != nil {
			t.Fatal(err)
		}
		lr := reader{b: payload}
		lr.str()
		lb, err := framed(payload[lr.off:], size)
		if err != nil {
			t.Fatal(err)
		}
		r := reader{b: lb.raw}
		lb.ensure(0, min(len(lb.raw), binary.MaxVarintLen64))
		base := int(r.uvarint())
		base += r.off
		lb.ensure(r.off, base)
		r.b = lb.raw[:base]
		l := r.nameList(lb, base, true, 1000)
		if r.err != nil || r.off != len(r.b) || l.n != n {
			t.Fatalf("%d names: %v, %d of %d bytes read", n, r.err, r.off, len(r.b))
		}
		for i, name := range names {
			at, v, ok := l.find(name)
			if !ok || at != i || v != uint32(values[i]) {
				t.Fatalf("%d names: %q found at %d with %d, %v; want %d with %d", n, name, at, v, ok, i, values[i])
			}
			if got, v, ok := l.at(i); !ok || got != name || v != uint32(values[i]) {
				t.Fatalf("%d names: at(%d) = %q, %d, %v", n, i, got, v, ok)
			}
			for _, absent := range []string{name + "\x00", name[:len(name)-1] + "0", name + "~"} {
				if _, _, ok := l.find(absent); ok != set[absent] {
					t.Fatalf("%d names: find(%q) = %v", n, absent, ok)
				}
			}
		}
		for _, absent := range []string{"", "0", "~", "zzzzzzzzzzzzzz"} {
			if _, _, ok := l.find(absent); ok {
				t.Fatalf("%d names: found %q", n, absent)
			}
		}
	}
}

// TestNameIndex: every name is found at its position, names not in the
// list are not, whatever the list's size.
func TestNameIndex(t *testing.T) {
	for _, n := range []int{0, 1, 2, 3, 100, 5000} {
		var names []string
		for i := range n {
			names = append(names, fmt.Sprintf("g%06d", i))
		}
		x := newNameIndex(names)
		for i, name := range names {
			if at, ok := x.find(name); !ok || at != i {
				t.Fatalf("%d names: %s found at %d, %v", n, name, at, ok)
			}
		}
		for _, name := range []string{"", "g", "g0000000", "G000000", "x"} {
			if _, ok := x.find(name); ok {
				t.Fatalf("%d names: found %q", n, name)
			}
		}
	}
}

// TestDecodeReadsInPlace: a load decodes no block of names, closures or
// grants; a token decodes the few blocks it needs and no others.
func TestDecodeReadsInPlace(t *testing.T) {
	p := &Policy{Roles: map[string]Role{}, Groups: map[string][]string{}}
	for i := range 5000 {
		name := fmt.Sprintf("role%05d", i)
		p.Roles[name] = Role{Permissions: []string{name + ":read", name + ":write"}}
		p.Groups["group"+name] = []string{name}
	}
	s, err := DecodeSnapshot(EncodeSnapshot(mustCompile(t, p), "label"), "v")
	if err != nil {
		t.Fatal(err)
	}
	v := s.ix.(*view)
	decoded := func() (n int) {
		for _, l := range []*nameList{&v.roles, &v.perms, &v.groups, &v.machines} {
			for _, b := range kept(l.blocks) {
				if b != nil {
					n++
				}
			}
		}
		for _, l := range []*grantList{&v.closures, &v.grants} {
			for _, slots := range kept(l.blocks) {
				for j := range slots {
					if slots != nil && slots[j].Load() != nil {
						n++
					}
				}
			}
		}
		return n
	}
	if n := decoded(); n > 1 { // the defaults' grant (empty here)
		t.Fatalf("the load decoded %d blocks and grants", n)
	}
	r := s.Resolve(Subject{Groups: []string{"grouprole01234"}})
	if !slices.Equal(r.Permissions, []string{"role01234:read", "role01234:write"}) {
		t.Fatalf("resolved %v", r.Permissions)
	}
	// The group's block, its grant, the role's and the permissions' blocks.
	if n := decoded(); n > 6 {
		t.Errorf("one token decoded %d blocks and grants of a 5,000-role policy", n)
	}
}

// kept returns what s holds, by slot (nil where nothing was made).
func kept[T any](s *slots[T]) []*T {
	out := make([]*T, len(s.of))
	for i := range s.of {
		out[i] = s.of[i].Load()
	}
	return out
}

// TestDecodedConcurrentUse: a decoded snapshot's first reads of its blocks
// may come from many goroutines at once (the race detector watches), and
// each sees what the compiled policy grants.
func TestDecodedConcurrentUse(t *testing.T) {
	p := randomPolicy(rand.New(rand.NewPCG(5, 6)), 50)
	want := mustCompile(t, p)
	subjects := make([]Subject, 64)
	rng := rand.New(rand.NewPCG(7, 8))
	for i := range subjects {
		subjects[i] = randomSubject(rng, 50)
	}
	got, err := DecodeSnapshot(EncodeSnapshot(want, "label"), "v")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan string, len(subjects)*4)
	for range 4 {
		for _, sub := range subjects {
			wg.Go(func() {
				if diff := cmp.Diff(want.Resolve(sub), got.Resolve(sub)); diff != "" {
					errs <- diff
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for diff := range errs {
		t.Fatalf("(-compiled +decoded):\n%s", diff)
	}
}

// bigPolicy has enough roles and groups for a body of several frames.
func bigPolicy() *Policy {
	p := &Policy{Roles: map[string]Role{}, Groups: map[string][]string{},
		Clients: map[string]ClientProfile{DefaultProfile: {AccessToken: TokenProfile{Scopes: true}}}}
	for i := range 3000 {
		name := fmt.Sprintf("role%05d", i)
		p.Roles[name] = Role{Permissions: []string{name + ":read", name + ":write"}}
		p.Groups["group"+name] = []string{name}
	}
	return p
}

// TestCompiledLengthsChecksummed: the header's lengths are under the
// checksum; a body length that still fits the last frame is refused at
// load, not found wrong when that frame is first read.
func TestCompiledLengthsChecksummed(t *testing.T) {
	data := EncodeSnapshot(mustCompile(t, bigPolicy()), "label")
	if n := binary.BigEndian.Uint32(data[lengthsAt+4:]); n < 2*frameSize {
		t.Fatalf("body of %d bytes: the test needs several frames", n)
	}
	for _, delta := range []int32{1, -1} {
		bad := bytes.Clone(data)
		binary.BigEndian.PutUint32(bad[lengthsAt+4:], uint32(int32(binary.BigEndian.Uint32(bad[lengthsAt+4:]))+delta))
		if _, err := DecodeSnapshot(bad, "v"); !errors.Is(err, ErrSnapshotDamaged) {
			t.Errorf("body length %+d: %v", delta, err)
		}
	}
}

// TestDamagedBlockGrantsNothing: a block whose shared prefix overflows
// an int, or is longer than the name before it, decodes to nothing; no
// panic.
func TestDamagedBlockGrantsNothing(t *testing.T) {
	for _, shared := range []uint64{math.MaxUint64, 1 << 63, 2} {
		var secs sections
		secs.section(2, func(w *writer, i int) {
			if i == 0 {
				w.str("a")
				return
			}
			w.uvarint(shared)
			w.str("bc")
		})
		head := append(binary.AppendUvarint(nil, uint64(len(secs.head.b))), secs.head.b...)
		lb := wholeBody(append(bytes.Clone(head), secs.area.b...))
		r := reader{b: lb.raw[:len(head)], off: len(head) - len(secs.head.b)}
		l := r.nameList(lb, len(head), false, 0)
		if r.err != nil {
			t.Fatal(r.err)
		}
		if _, _, found, answered := l.search("abc"); found || answered {
			t.Errorf("shared %d: found %v, answered %v: want a damaged block", shared, found, answered)
		}
		if _, _, ok := l.at(1); ok {
			t.Errorf("shared %d: entry 1 read from a damaged block", shared)
		}
	}
}

// TestDamagedPermissionsSuppress: where a profile adds scopes without a
// prefix, a requested scope named as a permission is suppressed unless
// granted; a damaged permissions section must not make it look like no
// permission (which would let it through).
func TestDamagedPermissionsSuppress(t *testing.T) {
	p := bigPolicy()
	s, err := DecodeSnapshot(EncodeSnapshot(mustCompile(t, p), "label"), "v")
	if err != nil {
		t.Fatal(err)
	}
	sub := Subject{Scopes: []string{"role01234:write"}}
	if got := s.Resolve(sub).Access.ScopesToSuppress; !slices.Contains(got, "role01234:write") {
		t.Fatalf("intact: suppressed %v", got)
	}
	v := s.ix.(*view)
	lb := wholeBody(bytes.Clone(v.body.all()))
	for k := 1; k < blocks(v.perms.n); k++ { // every block's offset past the section
		binary.LittleEndian.PutUint32(lb.raw[v.perms.table+4*k:], math.MaxUint32)
	}
	damaged, err := decodeBody(lb, "v")
	if err != nil {
		t.Fatal(err)
	}
	if got := damaged.Resolve(sub).Access.ScopesToSuppress; !slices.Contains(got, "role01234:write") {
		t.Errorf("damaged permissions: suppressed %v, letting role01234:write through", got)
	}
}

// TestIDsDoNotWrap: a gap that would wrap past 2^64 is refused, not read
// as a repeated or smaller id.
func TestIDsDoNotWrap(t *testing.T) {
	for _, gap := range []uint64{math.MaxUint64, math.MaxUint64 - 1, 10} {
		var w writer
		w.uvarint(2)
		w.uvarint(5)
		w.uvarint(gap)
		r := reader{b: w.b}
		if ids := r.ids(10); r.err == nil {
			t.Errorf("gap %d: read %v", gap, ids)
		}
	}
}
