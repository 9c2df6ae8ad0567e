package admin

import (
	"errors"
	"net/http"
	"time"

	"github.com/zerodq/zerodq/dq"
)

func (d *Dashboard) pageOverview(w http.ResponseWriter, r *http.Request, rq *request) {
	o, _ := d.readOverview(r.Context(), rq.queue)
	d.render(w, r, rq, "overview", "Overview", o)
}

func (d *Dashboard) apiOverview(w http.ResponseWriter, r *http.Request, rq *request) {
	o, _ := d.readOverview(r.Context(), rq.queue)
	writeJSON(w, http.StatusOK, o)
}

func (d *Dashboard) pageNodes(w http.ResponseWriter, r *http.Request, rq *request) {
	d.render(w, r, rq, "nodes", "Nodes", d.readNodes(r.Context(), rq.queue))
}

func (d *Dashboard) apiNodes(w http.ResponseWriter, r *http.Request, rq *request) {
	writeJSON(w, http.StatusOK, d.readNodes(r.Context(), rq.queue))
}

// latenessPage is the lateness page's data.
type latenessPage struct {
	View latenessView
	Err  string
}

func (d *Dashboard) pageLateness(w http.ResponseWriter, r *http.Request, rq *request) {
	v, err := d.readLateness(r.Context(), rq.queue)
	p := latenessPage{View: v}
	if err != nil {
		p.Err = err.Error()
	}
	d.render(w, r, rq, "lateness", "Lateness", p)
}

func (d *Dashboard) pageConsumers(w http.ResponseWriter, r *http.Request, rq *request) {
	d.render(w, r, rq, "consumers", "Consumers", d.readConsumers(r.Context(), rq.queue))
}

func (d *Dashboard) apiConsumers(w http.ResponseWriter, r *http.Request, rq *request) {
	writeJSON(w, http.StatusOK, d.readConsumers(r.Context(), rq.queue))
}

// jobsPage is the jobs page's data.
type jobsPage struct {
	IDs  []string
	Jobs []jobView
}

func (d *Dashboard) pageJobs(w http.ResponseWriter, r *http.Request, rq *request) {
	ids := jobIDs(r.URL.Query())
	p := jobsPage{IDs: ids, Jobs: d.readJobs(r.Context(), rq.queue, ids)}
	d.render(w, r, rq, "jobs", "Jobs", p)
}

func (d *Dashboard) apiJobs(w http.ResponseWriter, r *http.Request, rq *request) {
	ids := jobIDs(r.URL.Query())
	if len(ids) == 0 {
		writeError(w, http.StatusBadRequest, "give one or more job IDs: id=A&id=B or ids=A,B")
		return
	}
	writeJSON(w, http.StatusOK, struct {
		Jobs []jobView `json:"jobs"`
	}{d.readJobs(r.Context(), rq.queue, ids)})
}

// deadPageData is the dead-letter page's data.
type deadPageData struct {
	Query deadQuery
	Since string // the since parameter as given
	Limit int
	deadPage
	Err string
	Op  *dq.BulkOp
	// OpErr is why the operation named by op= could not be read.
	OpErr string
}

func (d *Dashboard) pageDead(w http.ResponseWriter, r *http.Request, rq *request) {
	q := r.URL.Query()
	p := deadPageData{Since: q.Get("since")}
	dqy, err := parseDeadQuery(q)
	p.Query, p.Limit = dqy, dqy.Limit
	if err != nil {
		p.Err = err.Error()
	} else if p.deadPage, err = d.readDead(r.Context(), rq.queue, dqy); err != nil {
		p.Err = err.Error()
	}
	if p.Letters == nil {
		p.Letters = []dq.DeadLetter{}
	}
	if id := q.Get("op"); id != "" {
		op, err := rq.queue.Bulk(r.Context(), id)
		if err != nil {
			p.OpErr = err.Error()
		} else {
			p.Op = &op
		}
	}
	d.render(w, r, rq, "dead", "Dead letters", p)
}

func (d *Dashboard) apiDead(w http.ResponseWriter, r *http.Request, rq *request) {
	dqy, err := parseDeadQuery(r.URL.Query())
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	p, err := d.readDead(r.Context(), rq.queue, dqy)
	if err != nil {
		writeError(w, statusOf(err), err.Error())
		return
	}
	writeJSON(w, http.StatusOK, p)
}

func (d *Dashboard) apiDeadCount(w http.ResponseWriter, r *http.Request, rq *request) {
	dqy, err := parseDeadQuery(r.URL.Query())
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	n, err := rq.queue.CountDead(r.Context(), dqy.filter())
	if err != nil {
		writeError(w, statusOf(err), err.Error())
		return
	}
	writeJSON(w, http.StatusOK, struct {
		Count int `json:"count"`
	}{n})
}

func (d *Dashboard) apiOp(w http.ResponseWriter, r *http.Request, rq *request) {
	op, err := rq.queue.Bulk(r.Context(), r.PathValue("id"))
	if err != nil {
		writeError(w, statusOf(err), err.Error())
		return
	}
	writeJSON(w, http.StatusOK, op)
}

// cronPage is the cron page's data.
type cronPage struct {
	cronView
	Err string
	Now time.Time
}

func (d *Dashboard) pageCron(w http.ResponseWriter, r *http.Request, rq *request) {
	v, err := d.readCron(r.Context())
	p := cronPage{cronView: v, Now: time.Now()}
	if err != nil {
		p.Err = err.Error()
	}
	d.render(w, r, rq, "cron", "Cron", p)
}

func (d *Dashboard) apiCron(w http.ResponseWriter, r *http.Request, rq *request) {
	v, err := d.readCron(r.Context())
	if err != nil {
		writeError(w, statusOf(err), err.Error())
		return
	}
	writeJSON(w, http.StatusOK, v)
}

// statusOf maps an Inspector error to an HTTP status.
func statusOf(err error) int {
	switch {
	case errors.Is(err, errNoCron), errors.Is(err, dq.ErrJobNotFound), errors.Is(err, dq.ErrNoSuchOp):
		return http.StatusNotFound
	case errors.Is(err, errBadRequest), errors.Is(err, dq.ErrBadVerb):
		return http.StatusBadRequest
	}
	return http.StatusServiceUnavailable
}

// errBadRequest marks an action's malformed request.
var errBadRequest = errors.New("bad request")
