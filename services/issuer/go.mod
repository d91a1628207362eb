module github.com/certlife/platform/services/issuer

go 1.26.8
