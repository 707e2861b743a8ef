"""Typology stage: grid classifications (Degree of Urbanisation, seven Nordic place types)."""
