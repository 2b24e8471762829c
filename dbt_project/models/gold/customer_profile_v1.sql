-- customer_profile v1: the flat seed schema (no provenance columns), kept for consumers
-- that have not moved to v2. Deprecated: see the model's deprecation_date.
select
    customer_id
    {%- for attribute, column, kind in profile_attributes() %},
    {{ column }}
    {%- endfor %},
    profile_resolved_at
from {{ ref('customer_profile', v=2) }}
