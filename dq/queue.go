package dq

import (
	"slices"
	"strings"
)

// claimTube names the queue in Redis keys (<KeyPrefix>:<claimTube>:<id>).
// Every copy of a job must map to the same record whatever node it sits on,
// and producers and consumers must agree even when they list the nodes in a
// different order: so it is the tube when all nodes share one (the common
// case), else the sorted distinct tubes joined with ','.
func (c DqConf) claimTube() string {
	tubes := make([]string, 0, len(c.Beanstalks))
	for _, b := range c.Beanstalks {
		tubes = append(tubes, b.Tube)
	}
	slices.Sort(tubes)
	return strings.Join(slices.Compact(tubes), ",")
}

// signingKeys turns the configured keys into the envelope key ring.
func (c DqConf) signingKeys() [][]byte {
	if len(c.SigningKeys) == 0 {
		return nil
	}
	keys := make([][]byte, len(c.SigningKeys))
	for i, k := range c.SigningKeys {
		keys[i] = []byte(k)
	}
	return keys
}
