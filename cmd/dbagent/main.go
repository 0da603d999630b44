// Command dbagent is dbha's per-node agent.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "dbagent: not implemented yet")
	os.Exit(1)
}
