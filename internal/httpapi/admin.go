package httpapi

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/fhirgate/fhirgate/fhir"
	"github.com/fhirgate/fhirgate/internal/store"
)

// adminRoutes serves the admin resources Client and AccessPolicy in the
// JSON shape of Aidbox (seed aidbox-smart-backend-services.md), to root only.
func (s *Server) adminRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /Client", s.admin("/Client", s.listClients))
	mux.HandleFunc("GET /Client/{id}", s.admin("/Client/{id}", s.getClient))
	mux.HandleFunc("PUT /Client/{id}", s.admin("/Client/{id}", s.putClient))
	mux.HandleFunc("DELETE /Client/{id}", s.admin("/Client/{id}", s.deleteClient))
	mux.HandleFunc("GET /AccessPolicy", s.admin("/AccessPolicy", s.listPolicies))
	mux.HandleFunc("GET /AccessPolicy/{id}", s.admin("/AccessPolicy/{id}", s.getPolicy))
	mux.HandleFunc("PUT /AccessPolicy/{id}", s.admin("/AccessPolicy/{id}", s.putPolicy))
	mux.HandleFunc("DELETE /AccessPolicy/{id}", s.admin("/AccessPolicy/{id}", s.deletePolicy))
}

// admin wraps an admin handler: route label, root check, error rendering.
func (s *Server) admin(route string, h func(w http.ResponseWriter, r *http.Request) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		setRoute(r, route)
		r2, err := s.requireRoot(r)
		if err == nil {
			err = h(w, r2)
		}
		if err != nil {
			s.writeError(w, r, err)
		}
	}
}

func writeJSON(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(body)
}

func adminID(r *http.Request) (string, error) {
	id := r.PathValue("id")
	if !fhir.ValidID(id) {
		return "", fhir.Invalid("invalid id %q: 1 to 64 characters from A-Z a-z 0-9 - .", id)
	}
	return id, nil
}

func (s *Server) adminBody(r *http.Request) ([]byte, error) {
	ct := strings.ToLower(strings.TrimSpace(strings.Split(r.Header.Get("Content-Type"), ";")[0]))
	if ct != "" && ct != fhir.MediaPlainJSON && ct != fhir.MediaJSON {
		return nil, fhir.Errorf(http.StatusUnsupportedMediaType, fhir.IssueNotSupported,
			"Content-Type %q is not supported: send application/json", ct)
	}
	return s.readBody(r)
}

func (s *Server) clientChanged(id string) {
	if s.cfg.OnClientChange != nil {
		s.cfg.OnClientChange(id)
	}
}

func (s *Server) policyChanged() {
	if s.cfg.OnPolicyChange != nil {
		s.cfg.OnPolicyChange()
	}
}

func (s *Server) listClients(w http.ResponseWriter, r *http.Request) error {
	list, err := s.cfg.Store.ListClients(r.Context())
	if err != nil {
		return err
	}
	bodies := make([][]byte, len(list))
	for i := range list {
		bodies[i] = list[i].Body
	}
	writeJSON(w, http.StatusOK, adminBundle(bodies))
	return nil
}

func (s *Server) getClient(w http.ResponseWriter, r *http.Request) error {
	id, err := adminID(r)
	if err != nil {
		return err
	}
	c, err := s.cfg.Store.GetClient(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		return fhir.NotFound("Client %q is not registered", id)
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, c.Body)
	return nil
}

func (s *Server) putClient(w http.ResponseWriter, r *http.Request) error {
	id, err := adminID(r)
	if err != nil {
		return err
	}
	body, err := s.adminBody(r)
	if err != nil {
		return err
	}
	stored, hash, err := s.cfg.Admin.PrepareClient(id, body)
	if err != nil {
		return err
	}
	created, err := s.cfg.Store.PutClient(r.Context(), store.ClientRecord{ID: id, Body: stored, SecretHash: hash})
	if err != nil {
		return err
	}
	s.clientChanged(id)
	writeJSON(w, createdStatus(created), stored)
	return nil
}

func (s *Server) deleteClient(w http.ResponseWriter, r *http.Request) error {
	id, err := adminID(r)
	if err != nil {
		return err
	}
	c, err := s.cfg.Store.GetClient(r.Context(), id)
	if err == nil {
		err = s.cfg.Store.DeleteClient(r.Context(), id)
	}
	if errors.Is(err, store.ErrNotFound) {
		return fhir.NotFound("Client %q is not registered", id)
	}
	if err != nil {
		return err
	}
	s.clientChanged(id)
	writeJSON(w, http.StatusOK, c.Body)
	return nil
}

func (s *Server) listPolicies(w http.ResponseWriter, r *http.Request) error {
	list, err := s.cfg.Store.ListPolicies(r.Context())
	if err != nil {
		return err
	}
	bodies := make([][]byte, len(list))
	for i := range list {
		bodies[i] = list[i].Body
	}
	writeJSON(w, http.StatusOK, adminBundle(bodies))
	return nil
}

func (s *Server) getPolicy(w http.ResponseWriter, r *http.Request) error {
	id, err := adminID(r)
	if err != nil {
		return err
	}
	p, err := s.cfg.Store.GetPolicy(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		return fhir.NotFound("AccessPolicy %q does not exist", id)
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, p.Body)
	return nil
}

func (s *Server) putPolicy(w http.ResponseWriter, r *http.Request) error {
	id, err := adminID(r)
	if err != nil {
		return err
	}
	body, err := s.adminBody(r)
	if err != nil {
		return err
	}
	stored, err := s.cfg.Admin.PreparePolicy(id, body)
	if err != nil {
		return err
	}
	created, err := s.cfg.Store.PutPolicy(r.Context(), store.PolicyRecord{ID: id, Body: stored})
	if err != nil {
		return err
	}
	s.policyChanged()
	writeJSON(w, createdStatus(created), stored)
	return nil
}

func (s *Server) deletePolicy(w http.ResponseWriter, r *http.Request) error {
	id, err := adminID(r)
	if err != nil {
		return err
	}
	p, err := s.cfg.Store.GetPolicy(r.Context(), id)
	if err == nil {
		err = s.cfg.Store.DeletePolicy(r.Context(), id)
	}
	if errors.Is(err, store.ErrNotFound) {
		return fhir.NotFound("AccessPolicy %q does not exist", id)
	}
	if err != nil {
		return err
	}
	s.policyChanged()
	writeJSON(w, http.StatusOK, p.Body)
	return nil
}

func createdStatus(created bool) int {
	if created {
		return http.StatusCreated
	}
	return http.StatusOK
}

// adminBundle lists admin resources as a searchset Bundle, as Aidbox does.
func adminBundle(bodies [][]byte) []byte {
	type entry struct {
		Resource json.RawMessage `json:"resource"`
	}
	out := struct {
		ResourceType string  `json:"resourceType"`
		Type         string  `json:"type"`
		Total        int     `json:"total"`
		Entry        []entry `json:"entry,omitempty"`
	}{ResourceType: "Bundle", Type: "searchset", Total: len(bodies)}
	for _, b := range bodies {
		out.Entry = append(out.Entry, entry{Resource: b})
	}
	b, _ := json.Marshal(out)
	return b
}
