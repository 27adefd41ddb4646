package awsfake

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// Function is a faked Lambda function.
type Function struct {
	// ARN is the unqualified function ARN.
	ARN     string
	Timeout int
	Role    string
	Env     map[string]string
}

type function struct {
	Function
	policies map[string]*resourcePolicy // by qualifier; "" is the unqualified function
	revision int
}

type resourcePolicy struct {
	statements []map[string]any
	revision   string
}

// AddFunction adds a function, with no resource policy.
func (f *Fake) AddFunction(fn Function) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.functions[fn.ARN] = &function{Function: fn, policies: map[string]*resourcePolicy{}}
}

// Statements returns the resource policy statements of a function (on
// qualifier; "" for the unqualified function).
func (f *Fake) Statements(arn, qualifier string) []map[string]any {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn := f.functions[arn]
	if fn == nil || fn.policies[qualifier] == nil {
		return nil
	}
	var out []map[string]any
	for _, st := range fn.policies[qualifier].statements {
		out = append(out, clone(st).(map[string]any))
	}
	return out
}

// AddStatement puts a statement into a function's resource policy as
// another tool would (CloudFormation's AWS::Lambda::Permission, say).
func (f *Fake) AddStatement(arn, qualifier string, st map[string]any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn := f.functions[arn]
	f.policyOf(fn, qualifier, true).add(fn, st)
}

func (f *Fake) policyOf(fn *function, q string, create bool) *resourcePolicy {
	p := fn.policies[q]
	if p == nil && create {
		p = &resourcePolicy{}
		fn.policies[q] = p
	}
	return p
}

func (p *resourcePolicy) add(fn *function, st map[string]any) {
	p.statements = append(p.statements, st)
	fn.revision++
	p.revision = fmt.Sprintf("rev-%d", fn.revision)
}

func (p *resourcePolicy) json() string {
	b, _ := json.Marshal(map[string]any{"Version": "2012-10-17", "Id": "default", "Statement": p.statements})
	return string(b)
}

// RolePolicy says which actions a role's policies allow (on any resource),
// for SimulatePrincipalPolicy.
func (f *Fake) RolePolicy(roleARN string, actions ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.roles[roleARN] = actions
}

func (f *Fake) serveLambda(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rest, ok := strings.CutPrefix(r.URL.EscapedPath(), "/2015-03-31/functions/")
	parts := strings.Split(rest, "/")
	for i := range parts {
		parts[i], _ = url.PathUnescape(parts[i])
	}
	in := map[string]any{}
	if len(body) > 0 {
		_ = json.Unmarshal(body, &in)
	}
	q := r.URL.Query()
	for k := range q {
		in[k] = q.Get(k)
	}
	var op string
	switch {
	case !ok || len(parts) < 2:
	case parts[1] == "policy" && len(parts) == 2 && r.Method == http.MethodGet:
		op = "GetPolicy"
	case parts[1] == "policy" && len(parts) == 2 && r.Method == http.MethodPost:
		op = "AddPermission"
	case parts[1] == "policy" && len(parts) == 3 && r.Method == http.MethodDelete:
		op, in["StatementId"] = "RemovePermission", parts[2]
	case parts[1] == "configuration" && r.Method == http.MethodGet:
		op = "GetFunctionConfiguration"
	}
	if ok && len(parts) > 0 {
		in["FunctionName"] = parts[0]
	}
	w.Header().Set("Content-Type", "application/json")
	if op == "" {
		w.Header().Set("X-Amzn-Errortype", "InvalidRequestContentException")
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, `{"message":"the fake does not serve %s %s"}`, r.Method, r.URL.Path)
		return
	}
	action := "lambda:" + op
	f.mu.Lock()
	f.record(r, action, in)
	status, out, aerr := f.lambda(op, in)
	f.mu.Unlock()
	if aerr != nil {
		w.Header().Set("X-Amzn-Errortype", aerr.code)
		w.WriteHeader(aerr.status)
		json.NewEncoder(w).Encode(map[string]string{"Type": "User", "message": aerr.message})
	} else {
		w.WriteHeader(status)
		if out != nil {
			json.NewEncoder(w).Encode(out)
		}
	}
	f.hook(action)
}

// lambda answers one operation; f.mu is held.
func (f *Fake) lambda(op string, in map[string]any) (int, any, *apiError) {
	name, _ := in["FunctionName"].(string)
	qualifier, _ := in["Qualifier"].(string)
	// A qualifier may come as a parameter or as the ARN's suffix, not both.
	if strings.Count(name, ":") == 7 {
		i := strings.LastIndex(name, ":")
		if qualifier != "" {
			return 0, nil, errorf(http.StatusBadRequest, "InvalidParameterValueException", "The derived qualifier from the function name does not match the specified qualifier.")
		}
		name, qualifier = name[:i], name[i+1:]
	}
	var fn *function
	for arn, c := range f.functions {
		if arn == name || strings.HasSuffix(arn, ":function:"+name) {
			fn = c
		}
	}
	if fn == nil {
		return 0, nil, errorf(http.StatusNotFound, "ResourceNotFoundException", "Function not found: %s", name)
	}
	target := fn.ARN
	if qualifier != "" {
		target += ":" + qualifier
	}
	switch op {
	case "GetFunctionConfiguration":
		vars := map[string]any{}
		for k, v := range fn.Env {
			vars[k] = v
		}
		return http.StatusOK, map[string]any{"FunctionName": fn.ARN[strings.LastIndex(fn.ARN, ":")+1:], "FunctionArn": target,
			"Timeout": fn.Timeout, "Role": fn.Role, "Environment": map[string]any{"Variables": vars}}, nil
	case "GetPolicy":
		p := f.policyOf(fn, qualifier, false)
		if p == nil || len(p.statements) == 0 {
			return 0, nil, errorf(http.StatusNotFound, "ResourceNotFoundException", "The resource you requested does not exist.")
		}
		return http.StatusOK, map[string]any{"Policy": p.json(), "RevisionId": p.revision}, nil
	case "AddPermission":
		sid, _ := in["StatementId"].(string)
		action, _ := in["Action"].(string)
		principal, _ := in["Principal"].(string)
		if sid == "" || action == "" || principal == "" {
			return 0, nil, errorf(http.StatusBadRequest, "InvalidParameterValueException", "StatementId, Action and Principal are required")
		}
		p := f.policyOf(fn, qualifier, true)
		if rev, _ := in["RevisionId"].(string); rev != "" && rev != p.revision {
			return 0, nil, errorf(http.StatusPreconditionFailed, "PreconditionFailedException", "The Revision Id provided does not match the latest Revision Id. Call the GetPolicy API to retrieve the latest Revision Id")
		}
		if slices.ContainsFunc(p.statements, func(s map[string]any) bool { return s["Sid"] == sid }) {
			return 0, nil, errorf(http.StatusConflict, "ResourceConflictException", "The statement id (%s) provided already exists. Please provide a new statement id, or remove the existing statement.", sid)
		}
		st := map[string]any{"Sid": sid, "Effect": "Allow", "Principal": map[string]any{"Service": principal},
			"Action": action, "Resource": target}
		cond := map[string]any{}
		if v, ok := in["SourceAccount"].(string); ok {
			cond["StringEquals"] = map[string]any{"AWS:SourceAccount": v}
		}
		if v, ok := in["SourceArn"].(string); ok {
			cond["ArnLike"] = map[string]any{"AWS:SourceArn": v}
		}
		if len(cond) > 0 {
			st["Condition"] = cond
		}
		p.add(fn, st)
		b, _ := json.Marshal(st)
		return http.StatusCreated, map[string]any{"Statement": string(b)}, nil
	case "RemovePermission":
		sid, _ := in["StatementId"].(string)
		p := f.policyOf(fn, qualifier, false)
		if p == nil {
			return 0, nil, errorf(http.StatusNotFound, "ResourceNotFoundException", "No policy is associated with the given resource.")
		}
		if rev, _ := in["RevisionId"].(string); rev != "" && rev != p.revision {
			return 0, nil, errorf(http.StatusPreconditionFailed, "PreconditionFailedException", "The Revision Id provided does not match the latest Revision Id.")
		}
		i := slices.IndexFunc(p.statements, func(s map[string]any) bool { return s["Sid"] == sid })
		if i < 0 {
			return 0, nil, errorf(http.StatusNotFound, "ResourceNotFoundException", "Statement %s is not found in resource policy.", sid)
		}
		p.statements = slices.Delete(p.statements, i, i+1)
		fn.revision++
		p.revision = fmt.Sprintf("rev-%d", fn.revision)
		return http.StatusNoContent, nil, nil
	}
	return 0, nil, errorf(http.StatusBadRequest, "InvalidRequestContentException", "unknown operation")
}
