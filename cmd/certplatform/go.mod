module github.com/certlife/platform/cmd/certplatform

go 1.26.8
