with source as ({{ dedupe(source('clever', 'sections')) }}),  -- an id served twice keeps its newest copy

final as (
    select {{ clever_ids('section_id') }}, school as school_id, {{ trimmed('name', 'period', 'section_number') }},
        grade as grade_raw, subject as subject_raw, course as course_id, term_id,
        cast(nullif(trim(teacher), '') as varchar) as teacher_id,  -- varchar: a Postgres view keeps its column types
        {{ trimmed('sis_id') }}
    from source
)

select * from final
