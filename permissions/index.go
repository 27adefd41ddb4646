package permissions

// lookup is where a Snapshot finds grants and names. Compile builds tables
// (Go slices and maps, from the policy); DecodeSnapshot reads the compiled
// form in place (view), decoding a part only when a token first needs it,
// so a cold container's load costs the checksum and little else, whatever
// the policy's size. Resolve's logic is the same over either.
type lookup interface {
	// group, machine and idpGroup return what a Cognito group, a machine
	// client and a provider's group grant, with names; nil for none.
	group(name string) *grant
	machine(clientID string) *grant
	idpGroup(provider, name string) *grant
	// role returns a role's closure; nil if the policy lacks the role.
	role(name string) *grant
	roleName(id uint32) string
	permName(id uint32) string
	// isPerm reports whether the policy holds permission name.
	isPerm(name string) bool
	numPerms() int
}

// tables is the index Compile builds.
type tables struct {
	roleNames []string  // by role number, sorted
	permNames []string  // by permission number, sorted
	roles     []grant   // by role number: the role's closure
	roleIdx   nameIndex // over roleNames: a role's number
	groupIdx  nameIndex // over the group names, sorted
	groups    []*grant  // by groupIdx position
	machines  map[string]*grant
	idpGroups map[string]map[string]*grant // by provider, then IdP group
}

func (t *tables) group(name string) *grant {
	if at, ok := t.groupIdx.find(name); ok {
		return t.groups[at]
	}
	return nil
}

func (t *tables) machine(id string) *grant { return t.machines[id] }

func (t *tables) idpGroup(provider, name string) *grant { return t.idpGroups[provider][name] }

func (t *tables) role(name string) *grant {
	if id, ok := t.roleIdx.find(name); ok {
		return &t.roles[id]
	}
	return nil
}

func (t *tables) roleName(id uint32) string { return t.roleNames[id] }
func (t *tables) permName(id uint32) string { return t.permNames[id] }
func (t *tables) numPerms() int             { return len(t.permNames) }

func (t *tables) isPerm(name string) bool {
	_, ok := binarySearch(len(t.permNames), func(i int) string { return t.permNames[i] }, name)
	return ok
}

// binarySearch finds name among n sorted names, name(i) the i-th.
func binarySearch(n int, name func(int) string, target string) (int, bool) {
	lo, hi := 0, n
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if name(m) < target {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo, lo < n && name(lo) == target
}

// scopeTable makes a profile's scopes (its prefix and a permission's name)
// when a token first needs them, and keeps them, a block of permissions at
// a time: a policy's 150,000 permissions cost nothing until granted.
type scopeTable struct {
	prefix string
	ix     lookup
	blocks slots[[blockSize]string]
}

func newScopeTable(prefix string, ix lookup) *scopeTable { return &scopeTable{prefix: prefix, ix: ix} }

// at returns the scope of permission id (below numPerms).
func (t *scopeTable) at(id uint32) string {
	k := id / blockSize
	return t.blocks.get(blocks(t.ix.numPerms()), int(k), func() *[blockSize]string {
		b := new([blockSize]string)
		lo, hi := k*blockSize, min((k+1)*blockSize, uint32(t.ix.numPerms()))
		n := 0
		for p := lo; p < hi; p++ {
			n += len(t.prefix) + len(t.ix.permName(p))
		}
		buf := make([]byte, 0, n)
		for p := lo; p < hi; p++ {
			buf = append(append(buf, t.prefix...), t.ix.permName(p)...)
		}
		all, at := string(buf), 0
		for p := lo; p < hi; p++ {
			l := len(t.prefix) + len(t.ix.permName(p))
			b[p-lo], at = all[at:at+l], at+l
		}
		return b
	})[id%blockSize]
}

// bitset is a set of permission numbers.
type bitset string

func newBitset(n int, in func(i int) bool) bitset {
	bits := make([]byte, (n+7)/8)
	for i := range n {
		if in(i) {
			bits[i/8] |= 1 << (i % 8)
		}
	}
	return bitset(bits)
}

func (b bitset) has(id uint32) bool { return b[id/8]&(1<<(id%8)) != 0 }
