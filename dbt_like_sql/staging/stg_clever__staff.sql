with source as ({{ dedupe(source('clever', 'staff')) }}),  -- an id served twice keeps its newest copy

final as (
    -- school_ids: the schools the staff member serves (a JSON list; one row per school in int_admins__scoped)
    select {{ clever_ids('user_id') }}, {{ trimmed('first_name', 'last_name') }},
        nullif(lower(trim(email)), '') as email, {{ trimmed('title') }}, schools as school_ids
    from source
)

select * from final
