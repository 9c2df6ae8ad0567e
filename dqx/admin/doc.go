// Package admin is zerodq's web dashboard: a queue's health, its nodes, the
// lateness of its jobs live, job lookup with each job's timeline, dead
// letters with bulk retry and delete, the cron schedule and the consumers,
// served from the module alone (html/template pages, one script, one
// stylesheet, inline SVG, all embedded; no CDN, no build step).
//
// Mount it in a go-zero service, read-only behind basic auth:
//
//	type Config struct {
//		rest.RestConf
//		Dq        dq.DqConf
//		Dashboard admin.Config
//	}
//
//	in, err := dq.NewInspector(c.Dq)
//	...
//	d, err := admin.Mount(server, c.Dashboard, in)
//	...
//	defer d.Close()
//
// with, in the yaml,
//
//	Dashboard:
//	  Prefix: /zerodq
//	  Users:
//	    ops: $2a$10$...   # htpasswd -nbB ops 'password', after the colon
//
// Every route needs authentication: basic auth against Config.Users (or
// the accounts in the environment variable Config.UsersEnv names), or a
// WithAuth hook that reads the service's own session. New refuses a Config
// with none unless WithInsecure is given (zerodq serve does so only on a
// loopback address).
//
// The dashboard is read-only unless Config.Actions is true: every action
// route (revoke, dead-letter retry and delete, pause, resume) answers 403
// otherwise, whoever asks. With actions on, an action must also come from
// the dashboard's own origin (Sec-Fetch-Site, Origin), and is written to
// the queue's audit stream once, under the authenticated user's name (the
// Inspector acts as the user: dq.Inspector.As), before it is done; a bulk
// operation and a pause name the user too.
//
// Routes, under Config.Prefix: pages /, /nodes, /lateness, /jobs, /dead,
// /cron (WithCron), /consumers; assets /static/app.js and /static/app.css;
// JSON /api/overview, /api/nodes, /api/jobs, /api/dead, /api/dead/count,
// /api/cron, /api/consumers, /api/ops/{id}; server-sent events
// /api/events ("overview" and "lateness"); actions (POST)
// /api/jobs/{id}/revoke, /api/dead/retry, /api/dead/delete, /api/pause,
// /api/resume.
package admin
