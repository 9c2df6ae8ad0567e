package claim

import (
	_ "embed"
	"strings"

	"github.com/zeromicro/go-zero/core/stores/redis"
)

// The Lua sources. common.lua (and route.lua for the scripts that route a
// copy) is prepended to each job script, so a script stays one EVALSHA.
var (
	//go:embed lua/common.lua
	commonLua string
	//go:embed lua/route.lua
	routeLua string
	//go:embed lua/claim.lua
	claimLua string
	//go:embed lua/extend.lua
	extendLua string
	//go:embed lua/finish.lua
	finishLua string
	//go:embed lua/gone.lua
	goneLua string
	//go:embed lua/buried.lua
	buriedLua string
	//go:embed lua/note.lua
	noteLua string
	//go:embed lua/abort.lua
	abortLua string
	//go:embed lua/reserve.lua
	reserveLua string
	//go:embed lua/confirm.lua
	confirmLua string
	//go:embed lua/revoke.lua
	revokeLua string
	//go:embed lua/now.lua
	nowLua string
	//go:embed lua/legacylock.lua
	legacyLockLua string
)

// sources keeps each script's text for SCRIPT LOAD; go-redis keeps it
// unexported.
var sources = map[*redis.Script]string{}

var (
	claimScript      = newScript(commonLua, routeLua, claimLua)
	extendScript     = newScript(commonLua, extendLua)
	finishScript     = newScript(commonLua, routeLua, finishLua)
	goneScript       = newScript(commonLua, goneLua)
	buriedScript     = newScript(commonLua, buriedLua)
	noteScript       = newScript(commonLua, noteLua)
	abortScript      = newScript(commonLua, abortLua)
	reserveScript    = newScript(commonLua, reserveLua)
	confirmScript    = newScript(commonLua, confirmLua)
	revokeScript     = newScript(commonLua, revokeLua)
	nowScript        = newScript(nowLua)
	legacyLockScript = newScript(legacyLockLua)
)

func newScript(parts ...string) *redis.Script {
	src := strings.Join(parts, "\n")
	sc := redis.NewScript(src)
	sources[sc] = src
	return sc
}
