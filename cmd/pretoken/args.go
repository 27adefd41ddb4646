package main

import (
	"fmt"
	"strings"
)

// policyArg is how every command that reads a policy file takes it: as the
// argument, or with -f (--file; --policy is the same flag).
type policyArg struct {
	File string `short:"f" name:"file" aliases:"policy" placeholder:"FILE" help:"Policy file (YAML); or name it as the argument."`
	Arg  string `arg:"" optional:"" name:"policy-file" help:"The policy file (YAML), instead of -f."`
}

// path returns the policy file named either way, "" when none is.
func (p *policyArg) path() (string, error) {
	if p.File != "" && p.Arg != "" && p.File != p.Arg {
		return "", usagef("name the policy file once: -f %s or %s", p.File, p.Arg)
	}
	if p.File == "" {
		p.File = p.Arg
	}
	return p.File, nil
}

// eventVersion is a pre token generation event version, written 1, v1,
// V1 or V1_0 (and 1_0, 1.0) alike; its value is the digit.
type eventVersion string

func (v *eventVersion) UnmarshalText(b []byte) error {
	s := strings.ToUpper(strings.TrimSpace(string(b)))
	s = strings.TrimPrefix(s, "V")
	s = strings.TrimSuffix(strings.TrimSuffix(s, "_0"), ".0")
	switch s {
	case "1", "2", "3":
		*v = eventVersion(s)
		return nil
	case "":
		if len(b) == 0 {
			*v = ""
			return nil
		}
	}
	return fmt.Errorf("event version %q: want 1, 2 or 3 (also written v1 or V1_0)", b)
}

// Name is the version as Cognito's LambdaVersion names it: V1_0.
func (v eventVersion) Name() string {
	if v == "" {
		return ""
	}
	return "V" + string(v) + "_0"
}
