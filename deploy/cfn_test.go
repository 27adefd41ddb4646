package deploy

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/pretoken/pretoken/internal/testenv"
)

// StacksVar names the variable holding the folder where `make package-all`
// writes one packaged stack per framework and stage (osls-demo, sls3-prod, …).
const StacksVar = "PRETOKEN_TEST_STACKS"

// stack is one packaged CloudFormation template and the stack parameters
// its stage deploys it with.
type stack struct {
	name   string // framework-stage
	stage  string
	params map[string]string
	tpl    template
}

type template struct {
	Parameters map[string]struct {
		AllowedValues []string
		Default       string
	}
	Conditions map[string]any
	Resources  map[string]resource
	Outputs    map[string]struct {
		Condition string
		Value     any
	}
}

type resource struct {
	Type           string
	Condition      string
	DependsOn      any
	DeletionPolicy string
	Properties     map[string]any
}

// stacks loads every packaged stack. make test packages four: osls and
// Serverless v3, each for the demo stage and a production-like one.
func stacks(t *testing.T) []stack {
	t.Helper()
	dir := testenv.Need(t, StacksVar, "the CloudFormation templates from make package-all")
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []stack
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		var s stack
		s.name = e.Name()
		readJSON(t, filepath.Join(dir, e.Name(), "cloudformation-template-update-stack.json"), &s.tpl)
		var state struct {
			Service struct {
				Provider struct {
					Stage           string
					StackParameters []struct{ ParameterKey, ParameterValue string }
				}
			}
		}
		readJSON(t, filepath.Join(dir, e.Name(), "serverless-state.json"), &state)
		s.stage = state.Service.Provider.Stage
		s.params = map[string]string{}
		for name, p := range s.tpl.Parameters {
			s.params[name] = p.Default
		}
		for _, p := range state.Service.Provider.StackParameters {
			s.params[p.ParameterKey] = p.ParameterValue
		}
		out = append(out, s)
	}
	if len(out) < 4 {
		t.Fatalf("%s holds %d packaged stacks, want 4 (osls and serverless v3, demo and prod)", dir, len(out))
	}
	return out
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// forEach runs f on every stack as a subtest.
func forEach(t *testing.T, f func(t *testing.T, s stack)) {
	for _, s := range stacks(t) {
		t.Run(s.name, func(t *testing.T) { f(t, s) })
	}
}

func (s stack) get(t *testing.T, name, typ string) resource {
	t.Helper()
	r, ok := s.tpl.Resources[name]
	if !ok {
		t.Fatalf("no resource %s", name)
	}
	if r.Type != typ {
		t.Fatalf("%s is %s, want %s", name, r.Type, typ)
	}
	return r
}

// eval is CloudFormation's evaluation of one template for one set of
// parameter values: which conditions hold, so which resources and outputs
// exist, and what a value with Fn::If resolves to.
type eval struct {
	tpl    template
	params map[string]string
	conds  map[string]bool
}

func newEval(t *testing.T, tpl template, params map[string]string) *eval {
	t.Helper()
	e := &eval{tpl: tpl, params: params, conds: map[string]bool{}}
	for name := range tpl.Conditions {
		if _, err := e.cond(name, 0); err != nil {
			t.Fatalf("condition %s: %v", name, err)
		}
	}
	return e
}

func (e *eval) cond(name string, depth int) (bool, error) {
	if v, ok := e.conds[name]; ok {
		return v, nil
	}
	def, ok := e.tpl.Conditions[name]
	if !ok || depth > 20 {
		return false, fmt.Errorf("unknown or cyclic condition %q", name)
	}
	v, err := e.boolean(def, depth+1)
	if err != nil {
		return false, err
	}
	e.conds[name] = v
	return v, nil
}

func (e *eval) boolean(v any, depth int) (bool, error) {
	m, ok := v.(map[string]any)
	if !ok || len(m) != 1 {
		return false, fmt.Errorf("not a condition function: %v", v)
	}
	for fn, arg := range m {
		list, _ := arg.([]any)
		switch fn {
		case "Condition":
			return e.cond(arg.(string), depth)
		case "Fn::Equals":
			a, b := e.scalar(list[0]), e.scalar(list[1])
			return a == b, nil
		case "Fn::Not":
			b, err := e.boolean(list[0], depth)
			return !b, err
		case "Fn::And", "Fn::Or":
			all, any := true, false
			for _, c := range list {
				b, err := e.boolean(c, depth)
				if err != nil {
					return false, err
				}
				all, any = all && b, any || b
			}
			if fn == "Fn::And" {
				return all, nil
			}
			return any, nil
		}
		return false, fmt.Errorf("unsupported condition function %s", fn)
	}
	return false, nil
}

func (e *eval) scalar(v any) string {
	if m, ok := v.(map[string]any); ok {
		if r, ok := m["Ref"].(string); ok {
			return e.params[r]
		}
	}
	return fmt.Sprint(v)
}

// exists reports whether a resource or output with this condition is created.
func (e *eval) exists(condition string) bool {
	return condition == "" || e.conds[condition]
}

// resolve returns v with every Fn::If replaced by its chosen branch and
// AWS::NoValue removed, as CloudFormation sees it.
func (e *eval) resolve(v any) any {
	switch x := v.(type) {
	case map[string]any:
		if arg, ok := x["Fn::If"].([]any); ok && len(x) == 1 {
			if e.conds[arg[0].(string)] {
				return e.resolve(arg[1])
			}
			return e.resolve(arg[2])
		}
		out := map[string]any{}
		for k, c := range x {
			if r := e.resolve(c); !isNoValue(r) {
				out[k] = r
			}
		}
		return out
	case []any:
		var out []any
		for _, c := range x {
			if r := e.resolve(c); !isNoValue(r) {
				out = append(out, r)
			}
		}
		return out
	}
	return v
}

func isNoValue(v any) bool {
	m, ok := v.(map[string]any)
	return ok && len(m) == 1 && m["Ref"] == "AWS::NoValue"
}

var subVar = regexp.MustCompile(`\$\{([^!}][^}]*)\}`)

// refs returns the logical ids of the resources that v refers to (Ref,
// Fn::GetAtt, Fn::Sub), looking only into the branches that Fn::If takes.
func (e *eval) refs(v any) []string {
	var out []string
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			if arg, ok := x["Fn::If"].([]any); ok && len(x) == 1 {
				walk(e.resolve(x))
				_ = arg
				return
			}
			for k, c := range x {
				switch k {
				case "Ref":
					if s, ok := c.(string); ok {
						out = append(out, s)
					}
				case "Fn::GetAtt":
					switch a := c.(type) {
					case []any:
						out = append(out, a[0].(string))
					case string:
						out = append(out, strings.SplitN(a, ".", 2)[0])
					}
				case "Fn::Sub":
					str, vars := "", map[string]any{}
					switch a := c.(type) {
					case string:
						str = a
					case []any:
						str = a[0].(string)
						vars, _ = a[1].(map[string]any)
						walk(a[1])
					}
					for _, m := range subVar.FindAllStringSubmatch(str, -1) {
						name := strings.SplitN(m[1], ".", 2)[0]
						if _, local := vars[name]; !local {
							out = append(out, name)
						}
					}
				default:
					walk(c)
				}
			}
		case []any:
			for _, c := range x {
				walk(c)
			}
		}
	}
	walk(v)
	return out
}

// dangling lists every reference from a created resource or output to a
// resource that is not created: CloudFormation rejects such a stack.
func (e *eval) dangling() []string {
	var problems []string
	check := func(from string, targets []string) {
		for _, to := range targets {
			if strings.HasPrefix(to, "AWS::") {
				continue
			}
			if _, isParam := e.tpl.Parameters[to]; isParam {
				continue
			}
			r, ok := e.tpl.Resources[to]
			switch {
			case !ok:
				problems = append(problems, fmt.Sprintf("%s refers to %s, which the template lacks", from, to))
			case !e.exists(r.Condition):
				problems = append(problems, fmt.Sprintf("%s refers to %s, which condition %s leaves out", from, to, r.Condition))
			}
		}
	}
	for name, r := range e.tpl.Resources {
		if !e.exists(r.Condition) {
			continue
		}
		check("resource "+name, e.refs(r.Properties))
		var deps []string
		switch d := r.DependsOn.(type) {
		case string:
			deps = []string{d}
		case []any:
			for _, x := range d {
				deps = append(deps, x.(string))
			}
		}
		check("resource "+name+" (DependsOn)", deps)
	}
	for name, o := range e.tpl.Outputs {
		if e.exists(o.Condition) {
			check("output "+name, e.refs(o.Value))
		}
	}
	slices.Sort(problems)
	return problems
}

// parameterSpace is every combination of the template's switches (the
// parameters its conditions read): their allowed values, or empty and set
// for the optional ARNs. A parameter no condition reads cannot change which
// resources exist.
func parameterSpace(tpl template, base map[string]string) []map[string]string {
	out := []map[string]string{{}}
	for k, v := range base {
		out[0][k] = v
	}
	conditions, _ := json.Marshal(tpl.Conditions)
	names := make([]string, 0, len(tpl.Parameters))
	for name := range tpl.Parameters {
		if strings.Contains(string(conditions), fmt.Sprintf(`{"Ref":%q}`, name)) {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	for _, name := range names {
		values := tpl.Parameters[name].AllowedValues
		if len(values) == 0 {
			values = []string{"", "arn:aws:example"} // optional ARNs: unset and set
		}
		var next []map[string]string
		for _, m := range out {
			for _, v := range values {
				c := map[string]string{}
				for k, x := range m {
					c[k] = x
				}
				c[name] = v
				next = append(next, c)
			}
		}
		out = next
	}
	return out
}
