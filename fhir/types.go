package fhir

import "sort"

var resourceTypeSet = func() map[string]struct{} {
	m := make(map[string]struct{}, len(resourceTypes))
	for _, t := range resourceTypes {
		m[t] = struct{}{}
	}
	return m
}()

// IsResourceType reports whether t names a concrete FHIR R4 resource type.
// Abstract types (Resource, DomainResource) are not resource types here: they
// cannot be created, read or searched on their own.
func IsResourceType(t string) bool {
	_, ok := resourceTypeSet[t]
	return ok
}

// ResourceTypes returns every concrete FHIR R4 (4.0.1) resource type, sorted.
// There are 146 of them; the caller may keep or modify the returned slice.
func ResourceTypes() []string {
	out := make([]string, len(resourceTypes))
	copy(out, resourceTypes[:])
	if !sort.StringsAreSorted(out) {
		sort.Strings(out)
	}
	return out
}
