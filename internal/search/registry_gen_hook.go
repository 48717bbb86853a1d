package search

//go:generate go run ./gen -out registry.tsv
