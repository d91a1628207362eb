// Command validation-agent is one remote network perspective of
// multi-perspective issuance corroboration (VA-7): it answers the
// validation service's DNS, HTTP and CAA checks over NATS, with a
// resolver of its own and no database. See services/validation/README.md.
package main

import "github.com/certlife/platform/services/validation"

func main() { validation.AgentMain() }
