# certlife platform — see README.md.
MODULES := pkg services/intake services/validation services/billing services/issuer services/notifier cmd/certplatform cmd/certctl
PKGS    := $(MODULES:%=./%/...)
BIN     := bin
SERVICES := intake validation billing issuer notifier

# Tests run packages two at a time: the machine has two cores, and every
# package starts its own embedded NATS and Postgres databases.
GOTEST_FLAGS ?= -count=1 -p 2 -timeout 15m

.PHONY: run run-split test bench build lint fmt tidy clean

## run: the whole platform in one process (embedded NATS, local or private Postgres, mail sink)
run: $(BIN)/certplatform
	$(BIN)/certplatform

## run-split: the platform as separate processes (3-node NATS cluster, two intake and
## two issuer replicas, one of each other service, mail sink, proxy on HTTP_ADDR)
run-split: build
	$(BIN)/certplatform split

## test: every test, against real Postgres, NATS and SMTP
test:
	go test $(GOTEST_FLAGS) $(PKGS)

## bench: N applications through the whole client flow over HTTP (BENCH_N, default 200),
## then a mass revocation of 100,000 certificates (OP-5: time to the CRL and to the last notice)
bench:
	BENCH_N=$${BENCH_N:-200} go test -count=1 -run '^$$' -bench BenchmarkClientFlow -benchtime 1x -timeout 20m ./cmd/certplatform/
	go test -count=1 -run '^$$' -bench BenchmarkMassRevocation100k -benchtime 1x -timeout 20m ./services/issuer/

## build: the all-in-one, one binary per service, the validation agent and the ops CLI into bin/
build: $(BIN)/certplatform $(SERVICES:%=$(BIN)/%) $(BIN)/validation-agent $(BIN)/certctl

$(BIN)/certplatform: FORCE
	go build -o $@ ./cmd/certplatform

$(BIN)/validation-agent: FORCE
	go build -o $@ ./services/validation/cmd/validation-agent

## bin/certctl: the ops CLI (or: go install ./cmd/certctl)
$(BIN)/certctl: FORCE
	go build -o $@ ./cmd/certctl

$(BIN)/%: FORCE
	go build -o $@ ./services/$*/cmd/$*

## lint: gofmt and go vet
lint:
	@test -z "$$(gofmt -l $(MODULES))" || (gofmt -l $(MODULES); exit 1)
	go vet $(PKGS)

fmt:
	gofmt -w $(MODULES)

tidy:
	for m in $(MODULES); do (cd $$m && go mod tidy) || exit 1; done

clean:
	rm -rf $(BIN) var

FORCE:
