// embedgen prepares the JSON files a provider binary embeds (the upstream
// build generates them with `go generate`; they are absent from module zips).
//
//	go -C tools/pulumi-offline/embedgen run . -schema in.json -version 4.25.0 -out schema-embed.json
//	go -C tools/pulumi-offline/embedgen run . -minify in.json -out mapping-embed.json
//
// -schema sets the top-level "version" field; -minify only re-encodes.
package main

import (
	"encoding/json"
	"flag"
	"log"
	"os"
)

func main() {
	schema := flag.String("schema", "", "schema.json to stamp with -version")
	minify := flag.String("minify", "", "JSON file to re-encode compactly")
	version := flag.String("version", "", "provider version to write into the schema")
	out := flag.String("out", "", "output file")
	flag.Parse()

	in := *schema
	if in == "" {
		in = *minify
	}
	if in == "" || *out == "" || (*schema != "" && *version == "") {
		flag.Usage()
		os.Exit(2)
	}
	raw, err := os.ReadFile(in)
	if err != nil {
		log.Fatal(err)
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(raw, &doc); err != nil {
		log.Fatalf("%s: %v", in, err)
	}
	if *schema != "" {
		v, _ := json.Marshal(*version)
		doc["version"] = v
	}
	enc, err := json.Marshal(doc)
	if err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(*out, enc, 0o644); err != nil {
		log.Fatal(err)
	}
}
