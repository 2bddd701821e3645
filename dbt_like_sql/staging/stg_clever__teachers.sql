with source as ({{ dedupe(source('clever', 'teachers')) }}),  -- an id served twice keeps its newest copy

final as (
    select {{ clever_ids('teacher_id') }}, school as school_id, {{ trimmed('first_name', 'last_name') }},
        email as email_raw, {{ trimmed('sis_id', 'state_id', 'title') }}
    from source
)

select * from final
