# zerodq — one target per thing a person does.
GO ?= go
GOFLAGS_TEST ?= -race -count=1 -timeout 15m
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: test servers browser screenshots vet lint fuzz bench soak demo fmt

## test: install the servers and the headless browser if missing, vet, run every test with -race, and every benchmark once so none rots
test: servers browser vet
	$(GO) test $(GOFLAGS_TEST) ./...
	$(GO) test -count=1 -run '^$$' -bench . -benchtime 1x ./...

## servers: make sure beanstalkd and redis-server are installed
servers:
	@bash scripts/install-servers.sh

## browser: make sure Debian's chromium-headless-shell is installed for the dashboard's browser tests (ZERODQ_CHROME picks another)
browser:
	@bash scripts/install-browser.sh

## screenshots: the README's pictures of the dashboard (docs/img/overview.png, job.png), from a browser test on real servers
screenshots: servers browser
	ZERODQ_SCREENSHOTS=docs/img $(GO) test -count=1 -run 'TestDashboardInABrowser' ./dqx/admin/

## demo: run the order example on 3 beanstalkd nodes and Redis and show each job firing (ARGS=-h for options)
demo: servers
	$(GO) build -o bin/order-api ./examples/order
	$(GO) run ./examples/order/cmd/demo -service bin/order-api $(ARGS)

vet:
	@test -z "$$(gofmt -l . | tee /dev/stderr)" || (echo "gofmt: files above need formatting" && exit 1)
	$(GO) vet ./...

## lint: staticcheck from the Go module proxy
lint:
	$(GO) run $(STATICCHECK) ./...

## fuzz: run every fuzzer (the envelope decoder, the cron spec parser) for FUZZTIME each (default 60s)
FUZZTIME ?= 60s
fuzz:
	$(GO) test ./internal/envelope -run '^$$' -fuzz FuzzDecode -fuzztime $(FUZZTIME)
	$(GO) test ./dqx -run '^$$' -fuzz FuzzParseSpec -fuzztime $(FUZZTIME)

## bench: zerodq beside raw beanstalkd on servers of its own (ARGS=-json, ARGS=-quick)
bench: servers
	$(GO) run ./dqx/cmd/zerodq-bench bench $(ARGS)

## soak: produce under random server, consumer and operator faults, then count lost jobs and runs twice (ARGS="-duration 10m")
soak: servers
	$(GO) run ./dqx/cmd/zerodq-bench soak $(ARGS)

fmt:
	gofmt -w .
