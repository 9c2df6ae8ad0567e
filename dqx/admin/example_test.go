package admin_test

import (
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/zeromicro/go-zero/core/conf"
	"github.com/zeromicro/go-zero/rest"
	"golang.org/x/crypto/bcrypt"

	"github.com/zerodq/zerodq/dq"
	"github.com/zerodq/zerodq/dqx/admin"
	"github.com/zerodq/zerodq/dqx/dqtest"
)

// The dashboard mounted read-only in a go-zero service, behind basic auth.
// A service takes the three configs from its yaml:
//
//	Dashboard:
//	  Prefix: /zerodq
//	  Users:
//	    ops: $2a$10$...   # htpasswd -nbB ops 'password', after the colon
//
// (The example starts servers of its own with dqx/dqtest and builds the
// hash here.)
func ExampleMount() {
	servers, err := dqtest.StartServers(dqtest.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer servers.Close()
	in, err := dq.NewInspector(servers.Conf("orders"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer in.Close()

	var rc rest.RestConf
	_ = conf.FillDefault(&rc)
	rc.Name, rc.Host, rc.Port, rc.Log.Mode, rc.Log.Level = "order-api", "127.0.0.1", freePort(), "console", "severe"
	server := rest.MustNewServer(rc)
	defer server.Stop()

	hash, _ := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	d, err := admin.Mount(server, admin.Config{Users: map[string]string{"ops": string(hash)}}, in)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer d.Close()
	go server.Start()

	addr := fmt.Sprintf("127.0.0.1:%d", rc.Port)
	dqtest.Await(5*time.Second, func() bool { // the server is starting
		conn, err := net.Dial("tcp", addr)
		if err == nil {
			conn.Close()
		}
		return err == nil
	})
	for _, pass := range []string{"", "s3cret"} {
		req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/zerodq/api/overview", nil)
		if pass != "" {
			req.SetBasicAuth("ops", pass)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			fmt.Println(err)
			return
		}
		res.Body.Close()
		fmt.Println(res.Status)
	}
	// Output:
	// 401 Unauthorized
	// 200 OK
}

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 8888
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
