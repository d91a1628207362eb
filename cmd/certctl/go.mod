module github.com/certlife/platform/cmd/certctl

go 1.26.8
