// Command trigger is the pretoken Lambda function: Amazon Cognito's pre token
// generation trigger. It is built as the binary "bootstrap" for the
// provided.al2023 runtime.
//
// Configuration comes from the environment:
//
//	PRETOKEN_POLICY_FILE  the policy file to serve (for example one bundled in the zip)
//	PRETOKEN_LOG_LEVEL    debug, info (default), warn or error
//
// Anything wrong stops the function at init with one log line, so a bad
// deployment fails before it serves a token.
package main

import (
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/rs/zerolog"

	"github.com/pretoken/pretoken/permissions"
	"github.com/pretoken/pretoken/trigger"
)

func main() {
	log := zerolog.New(os.Stdout).With().Timestamp().Logger()
	h, err := setup(log, os.Getenv)
	if err != nil {
		log.Error().Str("error", err.Error()).Msg("pretoken cannot start")
		os.Exit(1)
	}
	lambda.StartHandler(h)
}

type configError string

func (e configError) Error() string { return string(e) }

// setup builds the handler from the environment.
func setup(log zerolog.Logger, getenv func(string) string) (*trigger.Handler, error) {
	level := zerolog.InfoLevel
	if s := getenv("PRETOKEN_LOG_LEVEL"); s != "" {
		l, err := zerolog.ParseLevel(s)
		if err != nil || l == zerolog.NoLevel {
			return nil, configError("PRETOKEN_LOG_LEVEL must be debug, info, warn or error, not " + s)
		}
		level = l
	}
	log = log.Level(level)
	path := getenv("PRETOKEN_POLICY_FILE")
	if path == "" {
		return nil, configError("set PRETOKEN_POLICY_FILE to the policy file to serve")
	}
	snap, err := permissions.LoadFile(path)
	if err != nil {
		return nil, err
	}
	log.Info().Str("policy_version", snap.Version()).Str("policy_file", path).Msg("policy loaded")
	return trigger.New(trigger.Static{S: snap}, log), nil
}
